"""The tracker: lifecycle events boiled down to joins, leaves and activity (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.presence.tracker import PresenceBatch, PresenceTracker


@dataclass
class Conn:
    user: str | None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock | None = None) -> PresenceTracker:
    return PresenceTracker(active_every=30.0, clock=clock or Clock())


def test_first_session_joins_last_one_leaves() -> None:
    t = tracker()
    a1, a2, b = Conn("alice"), Conn("alice"), Conn("bob")
    for conn in (a1, a2, b):
        t.on_opened(conn)
        t.on_authenticated(conn)
    batch = t.take()
    assert sorted(batch.joins) == ["alice", "bob"]
    assert (batch.active, batch.leaves) == ((), ())
    assert sorted(t.users()) == ["alice", "bob"]
    t.on_closed(a1, "disconnect")
    assert not t.take()  # alice has another session
    t.on_closed(a2, "peer_closed")
    t.on_closed(b, "heartbeat_timeout")
    assert sorted(t.take().leaves) == ["alice", "bob"]
    assert len(t) == 0


def test_a_reload_between_two_takes_tells_redis_nothing() -> None:
    t = tracker()
    first, again = Conn("alice"), Conn("alice")
    t.on_authenticated(first)
    t.take()
    t.on_closed(first, "peer_closed")
    t.on_authenticated(again)
    assert not t.take()
    t.on_closed(again, "disconnect")
    t.on_authenticated(Conn("bob"))
    t.on_closed(Conn("bob"), "disconnect")  # came and went between takes: nothing
    assert t.take() == PresenceBatch((), (), ("alice",))


def test_unauthenticated_connections_are_not_counted() -> None:
    t = tracker()
    t.on_opened(Conn(None))
    t.on_closed(Conn(None), "connect_timeout")
    t.on_closed(Conn("mallory"), "protocol")  # closed without ever being authenticated here
    assert not t.take()
    assert len(t) == 0


def test_activity_is_taken_at_most_once_per_active_every() -> None:
    clock = Clock()
    t = tracker(clock)
    alice, bob = Conn("alice"), Conn("bob")
    t.on_authenticated(alice)
    t.on_authenticated(bob)
    t.take()
    t.on_activity([alice, bob])
    assert not t.take()  # joined just now: the join wrote the time
    clock.now += 30.0
    t.on_activity([alice, Conn(None)])
    t.on_activity([alice])
    assert t.take() == PresenceBatch(("alice",), (), ())
    clock.now += 10.0  # 40 s since both joined, 10 s since alice's activity was taken
    t.on_activity([alice, bob])
    assert t.take() == PresenceBatch(("bob",), (), ())
    clock.now += 20.0
    t.on_activity([alice, bob])
    assert t.take() == PresenceBatch(("alice",), (), ())


def test_a_batch_put_back_merges_with_what_came_since() -> None:
    t = tracker()
    stay, go, back = Conn("stay"), Conn("go"), Conn("back")
    t.on_authenticated(go)
    t.on_authenticated(back)
    t.take()  # Redis has go and back
    t.on_authenticated(stay)
    t.on_closed(go, "disconnect")
    t.on_closed(back, "disconnect")
    failed = t.take()  # joins stay; leaves go, back: the step fails
    t.on_authenticated(again := Conn("back"))  # back returns meanwhile
    t.untake(failed)
    batch = t.take()
    assert batch.joins == ("stay",)
    assert batch.leaves == ("go",)  # back: Redis still has them
    assert again.user == "back"
