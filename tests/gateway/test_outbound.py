"""A connection's output on its own: a real STOMP session, a recording transport."""

from __future__ import annotations

import asyncio

import pytest

from gateway import outbound
from gateway.errors import ClientError, ErrorMessage
from gateway.metrics import Metrics
from gateway.outbound import Output
from gateway.stomp import ServerSession, SessionConfig
from tests.gateway.test_connection import CONNECT, FakeOutbound


def make(limit: int = 100) -> tuple[Output, FakeOutbound, list[str], Metrics]:
    out, metrics = FakeOutbound(), Metrics()
    closed: list[str] = []
    session = ServerSession(SessionConfig())
    session.receive_data(CONNECT)
    assert session.events_received()
    session.accept(session_id="s1", user_name="alice")
    output = Output(
        out,
        session,
        metrics,
        max_outbound_buffer=limit,
        on_close=closed.append,
        log_extra={"session": "s1", "peer": "127.0.0.1"},
    )
    return output, out, closed, metrics


async def test_a_flush_writes_all_that_is_queued_at_once() -> None:
    output, out, closed, _ = make()
    before = output.last_write
    output.receipt("r1")
    output.receipt(None)  # no receipt asked for: nothing
    output.receipt("r2", (("x", "1"),))
    output.flush()
    assert len(out.writes) == 1
    assert out.commands() == ["CONNECTED", "RECEIPT", "RECEIPT"]
    assert out.header("x") == "1"
    assert output.last_write >= before
    output.flush()  # nothing queued: no write
    assert len(out.writes) == 1
    assert closed == []


async def test_a_slow_consumer_gets_one_error_and_the_close() -> None:
    output, out, closed, metrics = make(limit=100)
    output.flush()
    out.queued = 1000  # the backlog before the next write is over the limit
    output.receipt("r1")
    output.flush()
    assert out.commands()[-1] == "ERROR"
    assert out.header("message") == ErrorMessage.SLOW_CONSUMER
    assert out.header("stompgate-reason") == "slow_consumer"
    assert closed == ["slow_consumer"]
    assert output.closing
    assert out.closed
    assert metrics.registry.get_sample_value("stompgate_slow_consumer_drops_total") == 1


class KeepsUp(FakeOutbound):
    """A client that reads all but the write just made."""

    def buffered(self) -> int:
        return len(self.writes[-1]) if self.writes else 0


async def test_a_write_larger_than_the_limit_goes_out_to_a_client_that_keeps_up() -> None:
    output, _, closed, _ = make(limit=10)
    out = output.out = KeepsUp()
    output.receipt("r" * 500)
    output.flush()
    assert out.buffered() > 500
    assert out.commands() == ["CONNECTED", "RECEIPT"]
    assert closed == []


async def test_fail_sends_one_error_then_closes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "CLOSE_GRACE_SECONDS", 0.0)
    output, out, closed, metrics = make()
    output.refuse(ClientError(ErrorMessage.ACCESS_REFUSED, "not yours", reason="denied"), "r9")
    output.fail(ErrorMessage.SLOW_CONSUMER)  # already closing: nothing more
    output.close("again")
    assert out.commands() == ["CONNECTED", "ERROR"]
    assert out.header("receipt-id") == "r9"
    assert out.body() == "not yours"
    assert closed == ["denied"]
    assert metrics.registry.get_sample_value("stompgate_errors_total", {"reason": "denied"}) == 1
    assert out.closed
    assert not out.aborted
    await asyncio.sleep(0.01)  # the grace ends: a peer that does not read is aborted
    assert out.aborted
