"""Output batching: one write per connection per loop turn, or per broker read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.access import Access
from gateway.connection import Connection
from gateway.node import Node
from gateway.relay import ReadHooks, Relay
from gateway.settings import Settings


class FakeConn:
    def __init__(self, *, broken: bool = False) -> None:
        self.dirty = False
        self.closing = False
        self.flushes = 0
        self.broken = broken
        self.session_id = "s"

    def flush(self) -> None:
        self.flushes += 1
        if self.broken:
            raise RuntimeError("a bug in one session")

    def close(self) -> None:
        self.closing = True


def make_node() -> tuple[Node, Any]:
    relay = SimpleNamespace()

    def relay_factory(_lost: Any, hooks: ReadHooks) -> Relay:
        relay.read_hooks = hooks  # what the node gives the relay to call around each read
        return cast(Relay, relay)

    node = Node(Settings(), relay_factory, cast(Access, SimpleNamespace()))
    return node, relay


async def test_a_broker_read_flushes_when_it_ends_not_a_loop_turn_later() -> None:
    node, relay = make_node()
    begin, end = relay.read_hooks
    conns = [FakeConn() for _ in range(3)]
    begin()
    for conn in conns * 2:  # two deliveries each in one read
        if not conn.dirty:
            conn.dirty = True
            node.mark_dirty(cast(Connection, conn))
    assert [c.flushes for c in conns] == [0, 0, 0]
    end()
    assert [c.flushes for c in conns] == [1, 1, 1]  # at once, once each
    await asyncio.sleep(0)
    assert [c.flushes for c in conns] == [1, 1, 1]  # and nothing left for later


async def test_outside_a_read_the_flush_waits_for_the_end_of_the_loop_turn() -> None:
    node, _ = make_node()
    conn = FakeConn()
    conn.dirty = True
    node.mark_dirty(cast(Connection, conn))
    assert conn.flushes == 0
    await asyncio.sleep(0)
    assert conn.flushes == 1


async def test_a_session_whose_flush_fails_is_closed_and_the_others_still_flushed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, relay = make_node()
    begin, end = relay.read_hooks
    conns = [FakeConn(), FakeConn(broken=True), FakeConn()]
    begin()
    for conn in conns:
        conn.dirty = True
        node.mark_dirty(cast(Connection, conn))
    end()
    assert [c.flushes for c in conns] == [1, 1, 1]
    assert [c.closing for c in conns] == [False, True, False]
    assert "flush failed" in caplog.text
