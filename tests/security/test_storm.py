"""A storm leaves nothing behind (issue 13, point 5).

A real node (a subprocess, so its memory and sockets can be read from /proc) in JWT mode with
an ACL and a canary: one session subscribed to a topic, another publishing numbered messages
to it throughout. Then a storm of 2,000 STOMP connection attempts from one IP, over TCP, and
again over WebSocket, each CONNECTing as its own user: about 100 are admitted
(``max_connections_per_ip``, the canary's two sessions included) and held until the storm is
over, the rest are refused. Afterwards:

* every refusal is exactly the ERROR the client contract lists (``Too many connections``,
  reason ``connections_per_ip``), and nothing else happened to any attempt (a refused
  WebSocket is upgraded to be told so: the HTTP guard answers it before aiohttp builds a
  request for it, see gateway/transport/http_refusal.py);
* the node's connections to Redis are bounded: each of its clients' pools opens at most
  ``--redis-max-connections`` (before, the pool grew by one per concurrent CONNECT, ~100,
  and never shrank); they are counted from the node's own sockets, and their names
  (``stompgate:<node>:<role>``) from ``CLIENT LIST``;
* the node's RSS is back within ``RSS_BOUND`` of its level before the storm (measured here:
  +0.5 to +3 MiB over TCP; +6 to +8 MiB over WebSocket, whose 100 admitted sessions cost
  more (aiohttp's request and WebSocket objects), and ~+21 MiB before the HTTP guard answered
  refused upgrades itself. The heap itself is back: what stays is Python's and malloc's
  arenas pinned by a few live objects. The bounds leave room for that, not for a leak);
* the canary got every number, in order, during and after the storm.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest
import redis

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import (
    StompPeer,
    hs_token,
    jwt_env,
    jwt_gateways,
    redis_keys,
    subscribe,
    unique,
)

RULES = """
version = 1

[[rule]]
pattern = "/topic/lab.**"
actions = ["subscribe", "send"]
"""

ATTEMPTS = 2000
MAX_PER_IP = 100  # the default max_connections_per_ip
POOL = 8  # --redis-max-connections for this node
ROLES = 3  # access, chat, presence: one pool each
MIB = 1024 * 1024
RSS_BOUND = {"tcp": 8 * MIB, "ws": 12 * MIB}


@dataclass
class Node:
    gateway: GatewayProcess
    redis_url: str

    @property
    def pid(self) -> int:
        process = self.gateway.process
        assert process is not None
        return process.pid

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def redis_sockets(self) -> int:
        """The node's open TCP connections to Redis, from its file descriptors."""
        inodes = set()
        fds = f"/proc/{self.pid}/fd"
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"{fds}/{fd}"))
                if found:
                    inodes.add(found.group(1))
        port = f":{urlparse(self.redis_url).port or 6379:04X}"
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[2].endswith(port) and fields[3] == "01" and fields[9] in inodes:
                        count += 1
        return count

    def redis_names(self) -> collections.Counter[str]:
        """``CLIENT LIST`` names of this node's connections."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            mine = f"stompgate:{self.gateway.node_id}:"
            names = (str(c.get("name", "")) for c in client.client_list())
            return collections.Counter(name for name in names if name.startswith(mine))
        finally:
            client.close()


@pytest.fixture(scope="module")
def node(redis_url: str, log_dir: Path) -> Iterator[Node]:
    vhost = rabbit.create_vhost("stompgate-storm")
    rules = log_dir / "storm-acl.toml"
    rules.write_text(RULES)
    try:
        with redis_keys(redis_url) as (_, prefix):
            env = jwt_env(
                prefix,
                STOMPGATE_ACL_FILE=str(rules),
                STOMPGATE_REDIS_URL=redis_url,
                STOMPGATE_REDIS_MAX_CONNECTIONS=str(POOL),
                STOMPGATE_LOG_LEVEL="WARNING",  # 2,000 refusals would be 2,000 log lines
            )
            with jwt_gateways(rabbit.amqp_url(vhost), log_dir, [(unique("storm"), env)]) as (gw,):
                yield Node(gw, redis_url)
    finally:
        rabbit.delete_vhost(vhost)


CONNECT = "CONNECT\naccept-version:1.2\nhost:stompgate\nlogin:\npasscode:{token}\n\n\x00"


def outcome(data: bytes) -> str:
    """``connected``, or what a refusal said (``message|reason|first body line``)."""
    if data.startswith(b"CONNECTED\n"):
        return "connected"
    head, _, body = data.partition(b"\n\n")
    headers = dict(line.split(":", 1) for line in head.decode().split("\n")[1:])
    said = body.decode().split("\n", 1)[0].split(":", 1)[0]  # without the count
    return "|".join((headers.get("message", ""), headers.get("stompgate-reason", ""), said))


Attempt = Callable[[str, asyncio.Event], Coroutine[Any, Any, str]]


def tcp_attempt(node: Node) -> Attempt:
    return lambda user, over: attempt(node.gateway.stomp_port, user, over)


async def attempt(port: int, user: str, over: asyncio.Event) -> str:
    """One storm client over TCP: CONNECT; if admitted, hold the session until ``over``.
    Returns its :func:`outcome`."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"no socket: {exc}"
    data = b""
    try:
        writer.write(CONNECT.format(token=hs_token(user)).encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        with contextlib.suppress(ConnectionError):  # the node may close before it reads
            while b"\x00" not in data and (chunk := await reader.read(65536)):
                data += chunk
        if data.startswith(b"CONNECTED\n"):
            await over.wait()
        return outcome(data)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def ws_attempt(
    session: aiohttp.ClientSession, url: str, user: str, over: asyncio.Event
) -> str:
    """One storm client over WebSocket (a browser's part: ``v12.stomp``, text frames):
    CONNECT; if admitted, hold the session until ``over``. Returns its :func:`outcome`, or
    how the handshake failed."""
    try:
        async with session.ws_connect(url, protocols=("v12.stomp",)) as ws:
            with contextlib.suppress(ConnectionError):  # the node may close before it reads
                await ws.send_str(CONNECT.format(token=hs_token(user)))
            data = b""
            while b"\x00" not in data:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data += str(msg.data).encode()
            if data.startswith(b"CONNECTED\n"):
                await over.wait()
            return outcome(data)
    except (aiohttp.ClientError, ConnectionError) as exc:
        return f"handshake failed: {exc!r}"


async def storm(connect: Attempt) -> collections.Counter[str]:
    """Every attempt at once; the admitted hold their sessions (and the node's per-IP count)
    until every other attempt is answered, then all close together."""
    over = asyncio.Event()
    tasks = [asyncio.create_task(connect(f"storm{n}", over)) for n in range(ATTEMPTS)]
    while True:
        await asyncio.sleep(0.5)
        pending = sum(not task.done() for task in tasks)
        if pending <= MAX_PER_IP:
            await asyncio.sleep(1.0)  # the admitted stay pending; the refused are done
            if sum(not task.done() for task in tasks) == pending:
                break
    over.set()
    return collections.Counter(await asyncio.gather(*tasks))


async def canary(node: Node, topic: str, storming: asyncio.Event) -> list[int]:
    """Publish numbers to ``topic`` from one session and read them on another, before,
    during and after the storm; the numbers the reader got."""
    port = node.gateway.stomp_port
    async with StompPeer.tcp(port) as reader, StompPeer.tcp(port) as writer:
        assert (await reader.connect(hs_token("canary-reader"))).command == "CONNECTED"
        assert (await writer.connect(hs_token("canary-writer"))).command == "CONNECTED"
        await subscribe(reader, topic)
        got: list[int] = []
        sent = 0

        async def read_all() -> None:
            while not got or got[-1] != -1:
                frame = await reader.frame(within=60)
                assert frame.command == "MESSAGE", frame
                got.append(int(frame.body))

        listening = asyncio.create_task(read_all())
        try:
            while not storming.is_set() or sent < 20:
                await writer.send_frame("SEND", [("destination", topic)], str(sent))
                sent += 1
                await asyncio.sleep(0.05)
            await writer.send_frame("SEND", [("destination", topic), ("receipt", "last")], "-1")
            await writer.receipt("last", within=30)
            await asyncio.wait_for(asyncio.shield(listening), 30)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
        assert got[-1] == -1
        assert got[:-1] == list(range(sent)), got
        return got


async def settle(measure: Iterator[bool], within: float) -> bool:
    """Poll ``measure`` until it says True (memory and sockets are given back a little after
    the sockets close: the close grace, the release tasks), at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if next(measure):
            return True
        await asyncio.sleep(1.0)
    return next(measure)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_storm_from_one_ip_leaves_nothing_behind(node: Node, transport: str) -> None:
    # warm up: one session in and out, so the baseline counts what any first client costs
    if transport == "ws":
        async with StompPeer.ws(node.gateway.ws_url) as first:
            assert (await first.connect(hs_token("warm-up"))).command == "CONNECTED"
    else:
        async with StompPeer.tcp(node.gateway.stomp_port) as first:
            assert (await first.connect(hs_token("warm-up"))).command == "CONNECTED"
    await asyncio.sleep(6)  # past the close grace
    baseline_rss = node.rss()
    baseline_sockets = node.redis_sockets()

    storming = asyncio.Event()
    watching = asyncio.create_task(canary(node, f"/topic/lab.{unique('canary')}", storming))
    await asyncio.sleep(1.0)  # the canary is subscribed and publishing
    if transport == "ws":
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = node.gateway.ws_url
            outcomes = await storm(lambda user, over: ws_attempt(session, url, user, over))
    else:
        outcomes = await storm(tcp_attempt(node))
    storming.set()
    peak_sockets = node.redis_sockets()
    await watching  # asserts every number arrived, in order

    refused = "Too many connections|connections_per_ip|too many connections from 127.0.0.1"
    assert set(outcomes) <= {"connected", refused}, outcomes
    assert outcomes["connected"] + outcomes[refused] == ATTEMPTS
    # the canary's two sessions count against the same IP
    assert MAX_PER_IP - 10 <= outcomes["connected"] <= MAX_PER_IP - 2, outcomes
    assert outcomes[refused] >= ATTEMPTS - MAX_PER_IP

    # Redis: never more than a pool's worth per client, at the peak and after
    assert peak_sockets <= ROLES * POOL, peak_sockets
    names = node.redis_names()
    assert 1 <= names[f"stompgate:{node.gateway.node_id}:access"] <= POOL, names
    assert node.redis_sockets() <= max(baseline_sockets, ROLES * POOL)

    def rss_back() -> Iterator[bool]:
        while True:
            yield node.rss() - baseline_rss <= RSS_BOUND[transport]

    back = await settle(rss_back(), within=30)
    grown = (node.rss() - baseline_rss) / MIB
    print(f"{transport} storm: RSS {grown:+.1f} MiB from its level before")
    assert back, f"RSS still {grown:.1f} MiB above its level before the storm"
