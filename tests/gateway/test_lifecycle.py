"""Lifecycle events: a node announces opened, authenticated, closed (with a reason) and
activity (in batches, once per tick) to the listeners it was given."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import pytest

from gateway.access import Access, Identity
from gateway.app import Gateway
from gateway.lifecycle import ConnectionInfo, LogListener, MetricsListener
from gateway.metrics import Metrics
from gateway.node import TICK_SECONDS, Hosted, Node
from gateway.settings import Settings
from gateway.stomp import SessionState
from tests.support.gateway_proc import free_port

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00"


@dataclass
class Recorder:
    events: list[tuple[str, str]] = field(default_factory=list)  # (event, session id or reason)
    batches: list[list[str]] = field(default_factory=list)

    def on_opened(self, conn: ConnectionInfo) -> None:
        self.events.append(("opened", f"{conn.session_id} {conn.transport_name}"))

    def on_authenticated(self, conn: ConnectionInfo) -> None:
        self.events.append(("authenticated", f"{conn.session_id} {conn.user}"))

    def on_closed(self, conn: ConnectionInfo, reason: str) -> None:
        self.events.append(("closed", f"{conn.session_id} {reason}"))

    def on_activity(self, conns: Sequence[ConnectionInfo]) -> None:
        self.batches.append([conn.session_id for conn in conns])


@dataclass(eq=False)
class FakeConn:
    session_id: str
    transport_name: str = "ws"
    peer: str = "10.0.0.1"
    user: str | None = None
    version: str | None = None
    identity: Identity | None = None
    created: float = 0.0
    last_read: float = 0.0
    last_write: float = 0.0
    deadline: float | None = None
    frame_started: float | None = None
    timer_slot: int | None = None
    dirty: bool = False
    active: bool = False
    closing: bool = False
    session: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(state=SessionState.AWAITING_CONNECT, heartbeat=None)
    )
    released: bool = False

    def flush(self) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def fail(self, message: str, *, detail: str = "", reason: str = "error") -> None:
        self.closing = True

    def close(self, reason: str = "closed") -> None:
        self.closing = True

    async def release(self) -> None:
        self.released = True


def make_node(*listeners: Recorder | MetricsListener | LogListener) -> Node:
    access = SimpleNamespace(limits=SimpleNamespace(idle_timeout=0.0), close_ip=lambda ip: None)
    return Node(Settings(connect_timeout=0.0), cast(Access, access), listeners=listeners)


def hosted(conn: FakeConn) -> Hosted:
    return cast(Hosted, conn)


async def test_opened_authenticated_closed_in_order_to_every_listener() -> None:
    first, second = Recorder(), Recorder()
    node = make_node(first, second)
    conn = FakeConn("s-1")
    node.opened(hosted(conn))
    conn.user, conn.version = "alice", "1.2"
    node.authenticated(hosted(conn))
    node.forget(hosted(conn), "disconnect")
    node.forget(hosted(conn), "peer_closed")  # forgotten once
    await asyncio.sleep(0)
    expected = [("opened", "s-1 ws"), ("authenticated", "s-1 alice"), ("closed", "s-1 disconnect")]
    assert first.events == expected
    assert second.events == expected
    assert conn.released


def test_activity_is_announced_once_per_tick_for_authenticated_connections() -> None:
    recorder = Recorder()
    node = make_node(recorder)
    alice, anonymous, gone = FakeConn("a", user="alice"), FakeConn("x"), FakeConn("g", user="g")
    for conn in (alice, anonymous, gone):
        node.opened(hosted(conn))
        conn.active = True  # as a connection does before it calls mark_active
        node.mark_active(hosted(conn))
    gone.closing = True
    node.tick(1.0, 1.0)
    assert recorder.batches == [["a"]]
    assert [conn.active for conn in (alice, anonymous, gone)] == [False] * 3  # for the next tick
    node.tick(1.0 + TICK_SECONDS, 1.0 + TICK_SECONDS)
    assert recorder.batches == [["a"]]  # nothing read since: nothing announced


def test_metrics_listener_counts_sessions_by_transport() -> None:
    metrics = Metrics()
    listener = MetricsListener(metrics)
    conn = FakeConn("s", transport_name="tcp")
    listener.on_opened(conn)
    listener.on_opened(FakeConn("t", transport_name="tcp"))
    listener.on_closed(conn, "disconnect")
    sample = metrics.registry.get_sample_value
    assert sample("stompgate_sessions", {"transport": "tcp"}) == 1
    assert sample("stompgate_connections_total", {"transport": "tcp"}) == 2


def test_log_listener_says_who_connected(caplog: pytest.LogCaptureFixture) -> None:
    conn = FakeConn("s-9", transport_name="tcp", user="bob", version="1.1")
    with caplog.at_level(logging.INFO, logger="stompgate.connection"):
        LogListener().on_authenticated(conn)
    (record,) = caplog.records
    assert record.getMessage() == "connected"
    assert (record.session, record.user, record.version, record.transport) == (  # type: ignore[attr-defined]
        "s-9",
        "bob",
        "1.1",
        "tcp",
    )


@pytest.fixture
async def gateway(
    amqp_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[Gateway, Recorder]]:
    recorder = Recorder()
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        stomp_host="127.0.0.1",
        stomp_port=free_port(),
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        auth="dev",
        node_id="gw-lifecycle",
        heartbeat_send_ms=0,
        heartbeat_receive_ms=0,
    )
    node = Gateway(settings, listeners=(recorder,))
    await node.start()
    try:
        yield node, recorder
    finally:
        await node.stop()


async def test_a_real_session_is_announced_from_open_to_close(
    gateway: tuple[Gateway, Recorder],
) -> None:
    node, recorder = gateway
    reader, writer = await asyncio.open_connection("127.0.0.1", node.stomp_port)
    try:
        writer.write(CONNECT)
        assert (await reader.readuntil(b"\x00")).startswith(b"CONNECTED\n")
        await asyncio.sleep(TICK_SECONDS * 3)  # the CONNECT's activity goes out with a tick
        writer.write(b"\n")  # a heart-beat is activity too
        await asyncio.sleep(TICK_SECONDS * 3)
        writer.write(b"DISCONNECT\nreceipt:bye\n\n\x00")
        assert (await reader.readuntil(b"\x00")).startswith(b"RECEIPT\n")
        assert await reader.read() == b""
    finally:
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.05)
    (session_id,) = {event.split()[0] for _, event in recorder.events}
    assert recorder.events == [
        ("opened", f"{session_id} tcp"),
        ("authenticated", f"{session_id} guest"),
        ("closed", f"{session_id} disconnect"),
    ]
    assert recorder.batches[:2] == [[session_id], [session_id]]
