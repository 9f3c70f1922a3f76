"""Output batching: one write per connection per loop turn, or per broker read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

import pytest

from gateway.access import Access
from gateway.node import Hosted, Node
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

    def close(self, reason: str = "closed") -> None:
        self.closing = True


def make_node() -> Node:
    return Node(Settings(), cast(Access, SimpleNamespace()))


async def test_a_broker_read_flushes_when_it_ends_not_a_loop_turn_later() -> None:
    node = make_node()
    begin, end = node.begin_batch, node.end_batch  # the relay's read hooks
    conns = [FakeConn() for _ in range(3)]
    begin()
    for conn in conns * 2:  # two deliveries each in one read
        if not conn.dirty:
            conn.dirty = True
            node.mark_dirty(cast(Hosted, conn))
    assert [c.flushes for c in conns] == [0, 0, 0]
    end()
    assert [c.flushes for c in conns] == [1, 1, 1]  # at once, once each
    await asyncio.sleep(0)
    assert [c.flushes for c in conns] == [1, 1, 1]  # and nothing left for later


async def test_outside_a_read_the_flush_waits_for_the_end_of_the_loop_turn() -> None:
    node = make_node()
    conn = FakeConn()
    conn.dirty = True
    node.mark_dirty(cast(Hosted, conn))
    assert conn.flushes == 0
    await asyncio.sleep(0)
    assert conn.flushes == 1


async def test_a_session_whose_flush_fails_is_closed_and_the_others_still_flushed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = make_node()
    begin, end = node.begin_batch, node.end_batch  # the relay's read hooks
    conns = [FakeConn(), FakeConn(broken=True), FakeConn()]
    begin()
    for conn in conns:
        conn.dirty = True
        node.mark_dirty(cast(Hosted, conn))
    end()
    assert [c.flushes for c in conns] == [1, 1, 1]
    assert [c.closing for c in conns] == [False, True, False]
    assert "flush failed" in caplog.text
