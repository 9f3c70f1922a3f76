"""The node's timer wheel acts at exactly the ticks a scan of every connection would.

A seeded simulation drives fake connections (CONNECTs, reads, writes, token deadlines,
heart-beat plans) through many ticks twice: once through :meth:`Node.tick` and the wheel,
once through a reference that runs the same check (:meth:`Node._check`) on every open
connection on every tick (the ticker as it was before the wheel). Both must fail the same
sessions with the same messages and send the same heart-beats at the same ticks. What each
check decides is covered end to end by the real-socket tests (``test_operations``,
``test_security_*``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import cast

import pytest

from gateway.access import Access
from gateway.node import TICK_SECONDS, Hosted, Node
from gateway.settings import Settings
from gateway.stomp import SessionState
from gateway.stomp.session import HeartBeatPlan

Action = tuple[int, int, str]  # (tick number, connection number, what happened)


@dataclass
class FakeSession:
    state: SessionState = SessionState.AWAITING_CONNECT
    heartbeat: HeartBeatPlan | None = None


@dataclass(eq=False)  # hashed by identity, as connections are
class FakeConn:
    number: int
    created: float
    log: list[Action]
    session: FakeSession = field(default_factory=FakeSession)
    last_read: float = 0.0
    last_write: float = 0.0
    deadline: float | None = None
    frame_started: float | None = None
    timer_slot: int | None = None
    closing: bool = False
    tick: int = 0
    now: float = 0.0

    def __post_init__(self) -> None:
        self.last_read = self.last_write = self.created

    def fail(self, message: str, *, detail: str = "", reason: str = "error") -> None:
        self.log.append((self.tick, self.number, f"{reason}: {message} {detail}"))
        self.closing = True

    def heartbeat(self) -> None:
        self.log.append((self.tick, self.number, "heart-beat"))
        self.last_write = self.now


@dataclass
class FakeLimits:
    idle_timeout: float


@dataclass
class FakeAccess:
    limits: FakeLimits


def simulate(
    seed: int, *, wheel: bool, connect_timeout: float, idle_timeout: float, frame_timeout: float
) -> list[Action]:
    rng = random.Random(seed)
    settings = Settings(
        connect_timeout=connect_timeout, heartbeat_grace=1.5, frame_timeout=frame_timeout
    )
    access = FakeAccess(FakeLimits(idle_timeout))
    node = Node(settings, cast(Access, access))
    log: list[Action] = []
    conns: list[FakeConn] = []
    start = time.monotonic() + 1.0
    wall_offset = 1.7e9 - start
    now = start
    plans = [None, HeartBeatPlan(0, 0), HeartBeatPlan(700, 0), HeartBeatPlan(0, 900)]
    plans.append(HeartBeatPlan(1000, 1300))
    for tick in range(400):
        # Between ticks: new sockets, CONNECTs, reads and writes at times inside the gap.
        gap = TICK_SECONDS + rng.choice((0.0, 0.0, 0.001, 0.01, 0.06, 0.3))
        for _ in range(rng.randrange(3)):
            conn = FakeConn(len(conns), now + rng.random() * gap, log)
            conns.append(conn)
            if wheel:
                node.schedule(cast(Hosted, conn), conn.created, conn.created + wall_offset)
        for conn in conns:
            if conn.closing:
                continue
            at = now + rng.random() * gap
            conn.now, conn.tick = at, tick
            if conn.session.state is SessionState.AWAITING_CONNECT and rng.random() < 0.1:
                conn.session.state = SessionState.CONNECTED
                conn.session.heartbeat = rng.choice(plans)
                conn.last_read = at
                if rng.random() < 0.3:
                    conn.deadline = at + wall_offset + rng.uniform(0.0, 8.0)
                if wheel:
                    node.schedule(cast(Hosted, conn), at, at + wall_offset)
            elif conn.session.state is SessionState.CONNECTED:
                if rng.random() < 0.15:
                    conn.last_read = at
                    # A read may begin a frame it does not finish, or finish the one begun.
                    if conn.frame_started is None and rng.random() < 0.3:
                        conn.frame_started = at
                        if wheel:
                            node.schedule(cast(Hosted, conn), at, at + wall_offset)
                    elif conn.frame_started is not None and rng.random() < 0.5:
                        conn.frame_started = None
                if rng.random() < 0.1:
                    conn.last_write = at
        now += gap
        for conn in conns:
            conn.now, conn.tick = now, tick
        if wheel:
            node.tick(now, now + wall_offset)
        else:
            for conn in conns:  # the ticker before the wheel: every open connection
                if not conn.closing:
                    node._check(cast(Hosted, conn), now, now + wall_offset)
    return log


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("connect_timeout", "idle_timeout", "frame_timeout"),
    [(2.0, 3.0, 1.2), (0.0, 0.0, 0.0), (1.0, 0.0, 2.0)],
)
def test_the_wheel_acts_exactly_when_a_full_scan_would(
    seed: int, connect_timeout: float, idle_timeout: float, frame_timeout: float
) -> None:
    timeouts = {
        "connect_timeout": connect_timeout,
        "idle_timeout": idle_timeout,
        "frame_timeout": frame_timeout,
    }
    expected = simulate(seed, wheel=False, **timeouts)
    actual = simulate(seed, wheel=True, **timeouts)
    assert len(expected) > 20
    assert sorted(actual) == sorted(expected)


def test_sessions_without_timers_are_not_in_the_wheel() -> None:
    settings = Settings(connect_timeout=10.0)
    node = Node(settings, cast(Access, FakeAccess(FakeLimits(0.0))))
    now = time.monotonic()
    fake = FakeConn(0, now, [])
    conn = cast(Hosted, fake)
    node.schedule(conn, now, time.time())
    assert list(node._timers.values()) == [{conn}]  # the CONNECT timeout runs
    fake.session.state = SessionState.CONNECTED
    fake.session.heartbeat = HeartBeatPlan(0, 0)
    node.schedule(conn, now, time.time())
    assert fake.timer_slot is None
    assert node._timers == {}


def test_a_wall_clock_step_still_ends_an_expired_token_within_a_second() -> None:
    settings = Settings(connect_timeout=10.0)
    node = Node(settings, cast(Access, FakeAccess(FakeLimits(0.0))))
    now = time.monotonic() + 1.0
    log: list[Action] = []
    fake = FakeConn(0, now, log)
    fake.session.state = SessionState.CONNECTED
    fake.session.heartbeat = HeartBeatPlan(0, 0)
    fake.deadline = 1.7e9 + 600  # ten minutes ahead of the wall clock below
    node.schedule(cast(Hosted, fake), now, 1.7e9)
    for tick in range(1, 8):
        fake.tick = tick
        now += TICK_SECONDS
        node.tick(now, 1.7e9 + 3600 + tick * TICK_SECONDS)  # the wall clock jumped an hour
    # Looked at again one second after CONNECT (not every tick), then ended at once.
    assert [reason.split(":")[0] for _tick, _n, reason in log] == ["token_expired"]
    assert 3 <= log[0][0] <= 4
