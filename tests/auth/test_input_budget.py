"""The input meter and the node's input budget (pure), and rates per listener and role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.auth.input_budget import NodeInputBudget
from gateway.auth.limits import AbuseLimits
from gateway.auth.rates import RatePolicy, RateProfile, SessionRateLimiter
from gateway.settings import Settings


@dataclass
class Held:
    """What a session holds at the end of a read (the STOMP session's counts)."""

    buffered_input: int = 0
    frames_held: int = 0
    transaction_bytes: int = 0


def test_bytes_of_an_unfinished_frame_are_charged_at_the_end_of_each_read() -> None:
    rates = SessionRateLimiter(RateProfile(0, 0, 100, 100))
    meter = NodeInputBudget(0).meter()
    meter.arrived(60)
    breach, started = meter.end_read(rates, 0.0, Held(buffered_input=60), progressed=False)
    assert (breach, started) == (None, True)
    assert meter.frame_started == 0.0
    meter.arrived(60)  # the same frame goes on: 120 bytes in the same second
    breach, started = meter.end_read(rates, 0.0, Held(buffered_input=120), progressed=False)
    assert breach is not None
    assert breach.kind == "bytes_per_second"
    assert not started


def test_frames_held_in_a_transaction_are_charged_with_the_commit_at_the_latest() -> None:
    rates = SessionRateLimiter(RateProfile(1, 10, 0, 0))
    meter = NodeInputBudget(0).meter()
    assert meter.charge_event(rates, 0.0) is None  # one frame
    # BEGIN and 8 SENDs held, then the COMMIT: 10 frames > the 9 left in the burst.
    breach = meter.charge_event(rates, 0.0, frames_held=9)
    assert breach is not None
    assert breach.kind == "frames_per_second"
    assert meter.charge_event(rates, 100.0, frames_held=9) is None
    assert meter.charge_rest(rates, 9, 100.0) is None  # paid already: nothing twice


def test_the_session_that_would_pass_the_node_budget_is_refused() -> None:
    budget = NodeInputBudget(100)
    first, second = budget.meter(), budget.meter()
    assert first.hold(70) is None
    breach = second.hold(40)
    assert breach is not None
    assert breach.kind == "buffered_bytes"
    assert budget.used == 70
    assert second.held == 0
    assert second.hold(30) is None
    first.release()
    assert budget.used == 30
    assert second.hold(100) is None


def test_service_roles_get_their_own_rates_on_each_listener() -> None:
    browser = AbuseLimits()
    tcp = RateProfile.derived(0, 0, 16 * 1024 * 1024)
    service = RateProfile.derived(1000, 0, 4 * 1024 * 1024)
    policy = RatePolicy(
        {"ws": browser, "tcp": tcp}, {"ws": service, "tcp": service}, frozenset({"svc"})
    )
    assert policy.for_listener("ws") is browser
    assert policy.for_session("ws", frozenset({"member"})) is browser
    assert policy.for_session("ws", frozenset({"svc"})) is service
    assert policy.for_session("tcp", frozenset()) is tcp
    assert service.frames_burst == 2000
    assert service.bytes_burst == 4 * 1024 * 1024  # never below the listener's frame size


def test_a_byte_burst_below_the_listener_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="--tcp-bytes-burst"):
        Settings(tcp_bytes_burst=1024)
    with pytest.raises(ValueError, match="--frame-timeout"):
        Settings(frame_timeout=-1)
