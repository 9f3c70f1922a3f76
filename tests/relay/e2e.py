"""End-to-end helpers for relay behaviour seen through a real gateway process: a dev-mode node
on a vhost of the test module's own, a STOMP session at a chosen version, AMQP set-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, unique


@contextlib.contextmanager
def dev_gateway(log_dir: Path, *extra_args: str) -> Iterator[tuple[GatewayProcess, str]]:
    """A ``--auth dev`` node (guest, alice, bob) on a fresh vhost: (node, vhost)."""
    vhost = rabbit.create_vhost("stompgate-e2e")
    node = GatewayProcess(
        amqp_url=rabbit.amqp_url(vhost), node_id=unique("node"), extra_args=extra_args
    )
    try:
        node.start(log_dir)
        yield node, vhost
    finally:
        node.stop()
        rabbit.delete_vhost(vhost)


async def connect(peer: StompPeer, version: str = "1.2", login: str = "guest") -> Frame:
    """CONNECT at exactly ``version`` (a dev login); the CONNECTED frame."""
    await peer.send_frame(
        "CONNECT",
        [
            ("accept-version", version),
            ("host", "/"),
            ("login", login),
            ("passcode", login),
            ("heart-beat", "0,0"),
        ],
    )
    connected = await peer.frame()
    assert connected.command == "CONNECTED", connected
    assert connected.headers.get("version", "1.0") == version
    return connected


def ack_headers(version: str, message: Frame) -> dict[str, str]:
    """The headers that name ``message`` in an ACK or NACK at ``version``."""
    if version == "1.2":
        return {"id": message.headers["ack"]}
    return {
        "message-id": message.headers["message-id"],
        "subscription": message.headers["subscription"],
    }


async def next_message(peer: StompPeer, within: float = 10.0) -> Frame:
    """The next frame, which must be a MESSAGE."""
    found = await peer.frame(within)
    assert found.command == "MESSAGE", found
    return found


@contextlib.asynccontextmanager
async def amqp_channel(vhost: str) -> AsyncIterator[AbstractChannel]:
    """A plain AMQP channel on ``vhost`` for set-up and inspection."""
    connection = await aiormq.connect(rabbit.amqp_url(vhost))
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def queue_counts(vhost: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue`` right now (passive declare: no stats lag)."""
    async with amqp_channel(vhost) as channel:
        ok = await channel.queue_declare(queue, passive=True)
        return int(ok.message_count or 0), int(ok.consumer_count or 0)


def policy(vhost: str, name: str, pattern: str, definition: dict[str, Any]) -> None:
    """Put a queue policy on ``vhost`` (management API)."""
    rabbit.mgmt(
        "PUT",
        f"/policies/{rabbit.quote(vhost)}/{rabbit.quote(name)}",
        {"pattern": pattern, "definition": definition, "apply-to": "queues", "priority": 1},
    )


def drop_policy(vhost: str, name: str) -> None:
    rabbit.mgmt("DELETE", f"/policies/{rabbit.quote(vhost)}/{rabbit.quote(name)}")


def node_connections(vhost: str, node_id: str) -> list[str]:
    """A gateway node's AMQP connections on ``vhost``: their names and client ports (a
    connection lost and opened again has the same name, on another port)."""
    found = []
    for conn in rabbit.mgmt("GET", f"/vhosts/{rabbit.quote(vhost)}/connections"):
        name = str((conn.get("client_properties") or {}).get("connection_name", ""))
        if name.startswith(f"stompgate {node_id} "):
            found.append(f"{name} ({conn['name']})")
    return sorted(found)
