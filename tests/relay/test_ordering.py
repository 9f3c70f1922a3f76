"""`KeyOrderer`: a room's messages handed on in room order, holes given up on after the hold,
nothing lost, copies dropped. Pure (no broker): the broker-side test is in tests/e2e."""

from __future__ import annotations

import asyncio

import pytest

from gateway.relay.ordering import MAX_GAP, KeyOrderer, sequence_of

HOLD = 0.05


class Out:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, key: str, item: str) -> None:
        self.items.append((key, item))

    def of(self, key: str = "room.a") -> list[str]:
        return [item for k, item in self.items if k == key]


def make(max_gap: int = MAX_GAP) -> tuple[KeyOrderer[str], Out]:
    out = Out()
    return KeyOrderer(out, hold=HOLD, max_gap=max_gap), out


def offer(orderer: KeyOrderer[str], seq: int, key: str = "room.a", tag: str = "") -> None:
    # ids rise with the numbers, as the chat layer issues them
    orderer.offer(key, seq, 1000 + seq, tag or f"m{seq}")


async def test_in_order_goes_straight_through() -> None:
    orderer, out = make()
    for seq in (5, 6, 7):
        offer(orderer, seq)
    assert out.of() == ["m5", "m6", "m7"]
    assert orderer.held_total == 0


async def test_an_overtaken_message_is_waited_for() -> None:
    orderer, out = make()
    offer(orderer, 1)
    offer(orderer, 3)
    offer(orderer, 4)
    assert out.of() == ["m1"]
    offer(orderer, 2)
    assert out.of() == ["m1", "m2", "m3", "m4"]
    await asyncio.sleep(HOLD * 2)  # the timer was cancelled: nothing else happens
    assert out.of() == ["m1", "m2", "m3", "m4"]
    assert orderer.skipped_total == 0


async def test_a_hole_is_given_up_on_after_the_hold_and_a_late_one_still_arrives() -> None:
    orderer, out = make()
    offer(orderer, 1)
    offer(orderer, 4)
    offer(orderer, 3)
    assert out.of() == ["m1"]
    await asyncio.sleep(HOLD * 3)
    assert out.of() == ["m1", "m3", "m4"]
    assert orderer.skipped_total == 1
    offer(orderer, 2)  # later than the hold: out of order, but not lost
    offer(orderer, 5)
    assert out.of() == ["m1", "m3", "m4", "m2", "m5"]


async def test_copies_are_dropped() -> None:
    orderer, out = make()
    offer(orderer, 1)
    offer(orderer, 1, tag="again")  # a republished post, already handed on
    offer(orderer, 3)
    offer(orderer, 3, tag="again")  # a copy of a held one
    offer(orderer, 2)
    offer(orderer, 2, tag="again")
    assert out.of() == ["m1", "m2", "m3"]
    assert orderer.dropped_total == 3


async def test_keys_are_independent() -> None:
    orderer, out = make()
    offer(orderer, 1, key="room.a")
    offer(orderer, 10, key="room.b")
    offer(orderer, 3, key="room.a")
    offer(orderer, 11, key="room.b")
    assert out.of("room.b") == ["m10", "m11"]
    assert out.of("room.a") == ["m1"]
    offer(orderer, 2, key="room.a")
    assert out.of("room.a") == ["m1", "m2", "m3"]


async def test_a_message_published_before_the_first_one_seen_is_handed_on() -> None:
    orderer, out = make()
    offer(orderer, 8)  # the node started listening to the room just now
    offer(orderer, 7)  # overtaken by 8 on its way: before the key's first number
    offer(orderer, 9)
    assert out.of() == ["m8", "m7", "m9"]
    offer(orderer, 7, tag="again")
    assert out.of() == ["m8", "m7", "m9", "again"]  # below the first: no record, handed on


async def test_a_restarted_counter_is_followed() -> None:
    orderer, out = make()
    for seq in (40, 41, 43):
        offer(orderer, seq)
    # Redis lost the counter: numbers start again at 1, with ids above all before
    orderer.offer("room.a", 1, 5000, "new1")
    orderer.offer("room.a", 2, 5001, "new2")
    assert out.of() == ["m40", "m41", "m43", "new1", "new2"]


async def test_a_far_jump_is_a_new_start() -> None:
    orderer, out = make(max_gap=100)
    offer(orderer, 1)
    offer(orderer, 3)
    offer(orderer, 500)
    assert out.of() == ["m1", "m3", "m500"]
    offer(orderer, 501)
    assert out.of()[-1] == "m501"


async def test_idle_keys_are_forgotten_and_reset_cancels_timers() -> None:
    now = [0.0]
    out = Out()
    orderer: KeyOrderer[str] = KeyOrderer(out, hold=HOLD, idle_evict=10.0, clock=lambda: now[0])
    offer(orderer, 1, key="room.a")
    offer(orderer, 1, key="room.b")
    assert len(orderer) == 2
    now[0] = 11.0
    offer(orderer, 2, key="room.b")  # room.a idle for 11 s: swept
    assert len(orderer) == 1
    offer(orderer, 5, key="room.b")  # held, timer armed
    orderer.reset()
    await asyncio.sleep(HOLD * 2)
    assert len(orderer) == 0
    assert out.of("room.b") == ["m1", "m2"]


def test_sequence_of_reads_both_headers() -> None:
    assert sequence_of({"stompgate-room-seq": "12", "stompgate-message-id": "99"}) == (12, 99)
    assert sequence_of({"stompgate-room-seq": b"12", "stompgate-message-id": 99}) == (12, 99)
    assert sequence_of({"stompgate-room-seq": "12"}) is None
    assert sequence_of({"stompgate-room-seq": "-1", "stompgate-message-id": "9"}) is None
    assert sequence_of({"stompgate-room-seq": "x", "stompgate-message-id": "9"}) is None
    assert sequence_of(None) is None
    assert sequence_of({}) is None


def test_hold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="hold"):
        KeyOrderer(Out(), hold=0)


async def test_a_seeded_key_waits_for_the_first_number_after_the_seed() -> None:
    orderer, out = make()
    orderer.seed("room.a", 5, 1004)  # a catch-up read everything up to 4
    offer(orderer, 6)  # overtook 5
    assert out.of() == []
    offer(orderer, 4)  # in the catch-up already; its live copy is below the seed
    offer(orderer, 5)
    assert out.of() == ["m4", "m5", "m6"]


async def test_seeding_a_followed_key_changes_nothing() -> None:
    orderer, out = make()
    offer(orderer, 1)
    orderer.seed("room.a", 9, 1008)
    offer(orderer, 2)
    assert out.of() == ["m1", "m2"]


async def test_a_forgotten_key_starts_again_without_waiting_or_skipping() -> None:
    """The node stopped listening to the room (unbind) and later listens again: the numbers
    published meanwhile never reach it, so its next number is a new start, not a hole."""
    orderer, out = make()
    offer(orderer, 1)
    offer(orderer, 3)  # held: 2 is late
    offer(orderer, 1, key="room.b")
    assert orderer.forget(lambda key: key == "room.a") == 1
    assert out.of() == ["m1", "m3"]  # what was held is handed on, its gap not counted
    assert not orderer.follows("room.a")
    assert orderer.follows("room.b")
    offer(orderer, 40)  # 4..39 went by while the node was not bound
    offer(orderer, 41)
    assert out.of() == ["m1", "m3", "m40", "m41"]
    await asyncio.sleep(HOLD * 3)  # no timer left behind
    assert out.of() == ["m1", "m3", "m40", "m41"]
    assert orderer.skipped_total == 0
    assert orderer.held_total == 1


async def test_a_forgotten_key_can_be_seeded_again() -> None:
    orderer, out = make()
    offer(orderer, 1)
    orderer.seed("room.a", 30, 1028)  # followed: no effect
    orderer.forget(lambda key: True)
    orderer.seed("room.a", 30, 1028)  # a catch-up after the re-subscribe read up to 29
    offer(orderer, 31)
    assert out.of() == ["m1"]
    offer(orderer, 30)
    assert out.of() == ["m1", "m30", "m31"]
