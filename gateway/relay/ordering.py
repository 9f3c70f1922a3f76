"""Room order at the edge: topic messages that carry a room sequence number reach local
subscribers in that order, per routing key.

Why: a device resumes a room from the highest message id it holds (``cur-max-message-id``),
so it must never hold a message without every earlier one. The chat layer numbers a room's
posts in Redis (the room ordinal, header ``stompgate-room-seq``; ids rise along it, see
`gateway.chat.post_ledger`), but the posts reach the broker from several nodes, each after
its own Redis round trip, so a later post can overtake an earlier one by a few milliseconds.
A device that received the later one, and lost its connection before the earlier one came,
would resume past it and never see it. So each node hands a room's messages on in ordinal
order, whichever order the broker delivered them in.

Per routing key the node keeps the next number it expects:

- that number: handed on at once, with every held successor that follows without a gap;
- a higher one: held until the gap fills, for at most ``hold`` seconds; then everything held
  goes out in order, and the numbers still missing are remembered as skipped (a post whose
  publish failed, or whose node died before publishing, leaves such a hole for good);
- a lower one: handed on if its number was skipped (it arrived later than ``hold``) or lies
  below the key's first number (published before it, and overtaken by it): the two cases
  where order is not kept, but nothing is lost. Otherwise it is a copy already handed on (a
  retry that republished a post, `gateway.chat.post_ledger`) and dropped - unless its message
  id is above every id handed on for the key: ids rise with the numbers, so the counter
  started again (Redis lost it), and so does the key.

The first message of a key sets the expectation, as does the first after the key was idle
for ``idle_evict`` seconds (its state is dropped) or after the node stopped listening to it
(`forget`: the fan-out forgets a key when no binding of the node covers it any more, and
again when one is made, so numbers published while the node was not bound are never waited
for nor counted as skipped), unless a catch-up seeded the key first with the room's counter
(`seed`). A number more than ``max_gap`` ahead
releases what is held and starts the key again from it. Messages without both headers
(typing, read receipts, anything not from the chat layer) pass straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from gateway import stomp_headers

__all__ = ["ID_HEADER", "SEQ_HEADER", "KeyOrderer", "sequence_of"]

SEQ_HEADER = stomp_headers.ROOM_SEQ
ID_HEADER = stomp_headers.MESSAGE_ID
MAX_GAP = 10_000
"""A number further ahead than this is a new start, not a gap to wait for."""
MAX_SKIPPED = 4096
"""Skipped numbers remembered per key (the oldest are forgotten first)."""

T = TypeVar("T")


def _number(value: object) -> int | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def sequence_of(headers: Mapping[str, object] | None) -> tuple[int, int] | None:
    """(room ordinal, message id) of a delivery's AMQP headers, or None if it has none."""
    if not headers:
        return None
    seq = _number(headers.get(SEQ_HEADER))
    if seq is None:
        return None
    message_id = _number(headers.get(ID_HEADER))
    return None if message_id is None else (seq, message_id)


class _Stream(Generic[T]):
    __slots__ = ("active", "base", "held", "next", "skipped", "timer", "top_id")

    def __init__(self, seq: int, now: float) -> None:
        self.base = seq  # the first number seen: lower ones were never handed on here
        self.next = seq
        self.top_id = -1
        self.held: dict[int, tuple[int, T]] = {}
        self.skipped: dict[int, None] = {}  # insertion-ordered: the oldest go first
        self.timer: asyncio.TimerHandle | None = None
        self.active = now


class KeyOrderer(Generic[T]):
    """Puts items back in sequence order per key; ``release(key, item)`` gets them in order."""

    def __init__(
        self,
        release: Callable[[str, T], None],
        *,
        hold: float,
        idle_evict: float = 300.0,
        max_gap: int = MAX_GAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if hold <= 0:
            raise ValueError("hold must be positive")
        self._release = release
        self._hold = hold
        self._idle_evict = idle_evict
        self._max_gap = max_gap
        self._clock = clock
        self._streams: dict[str, _Stream[T]] = {}
        self._swept = clock()
        self.held_total = 0  # items that had to wait for an earlier one (a metric)
        self.skipped_total = 0  # numbers given up on after ``hold``
        self.dropped_total = 0  # copies dropped

    def __len__(self) -> int:
        return len(self._streams)

    def offer(self, key: str, seq: int, message_id: int, item: T) -> None:
        now = self._clock()
        if now - self._swept > self._idle_evict:
            self._sweep(now)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(seq, now)
        stream.active = now
        if seq == stream.next:
            self._hand_on(key, stream, seq, message_id, item)
            self._drain(key, stream)
        elif seq > stream.next:
            if seq - stream.next > self._max_gap:
                self._flush(key, stream, remember=False)
                stream.next = seq
                self._hand_on(key, stream, seq, message_id, item)
            elif seq in stream.held:
                self.dropped_total += 1
            else:
                stream.held[seq] = (message_id, item)
                self.held_total += 1
                if stream.timer is None:
                    loop = asyncio.get_running_loop()
                    stream.timer = loop.call_later(self._hold, self._expire, key)
        elif message_id > stream.top_id:
            # Ids rise with the numbers: a lower number with a higher id means the counter
            # started again. Hand on what is held and follow the new numbers.
            self._flush(key, stream, remember=False)
            stream.skipped.clear()
            stream.base = seq
            self._hand_on(key, stream, seq, message_id, item)
        elif seq in stream.skipped or seq < stream.base:
            # Late (given up on), or published before this key's first message and overtaken
            # by it: out of order, but never lost.
            stream.skipped.pop(seq, None)
            self._release(key, item)
        else:
            self.dropped_total += 1

    def seed(self, key: str, next_seq: int, top_id: int) -> None:
        """Expect ``next_seq`` next on ``key``, unless the key is being followed already.

        For a subscriber that reads the room's history up to ``next_seq - 1`` (catch-up):
        without it, a key's first message would set the expectation, and an earlier one
        overtaken by it would be handed on after it.
        """
        if key in self._streams:
            return
        stream = self._streams[key] = _Stream(next_seq, self._clock())
        stream.top_id = top_id

    def follows(self, key: str) -> bool:
        """Does the node keep an expectation for ``key``?"""
        return key in self._streams

    def forget(self, matching: Callable[[str], bool]) -> int:
        """Forget every key for which ``matching(key)`` is true; return how many.

        For keys the node stops (or starts again) listening to: the numbers published while
        it did not listen never reach it, so the key's next message must start the
        expectation again rather than wait for them (and count them as skipped). What such a
        key still holds is handed on first, in order, without counting its gaps as skipped.
        """
        keys = [key for key in self._streams if matching(key)]
        for key in keys:
            stream = self._streams[key]
            self._flush(key, stream, remember=False)
            del self._streams[key]
        return len(keys)

    def reset(self) -> None:
        """Forget every key (the broker connection is gone; held items with it)."""
        for stream in self._streams.values():
            if stream.timer is not None:
                stream.timer.cancel()
        self._streams.clear()

    def _hand_on(self, key: str, stream: _Stream[T], seq: int, message_id: int, item: T) -> None:
        stream.next = seq + 1
        stream.top_id = max(stream.top_id, message_id)
        self._release(key, item)

    def _drain(self, key: str, stream: _Stream[T]) -> None:
        held = stream.held
        while held:
            entry = held.pop(stream.next, None)
            if entry is None:
                return
            self._hand_on(key, stream, stream.next, *entry)
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None

    def _expire(self, key: str) -> None:
        stream = self._streams.get(key)
        if stream is not None:
            stream.timer = None
            self._flush(key, stream, remember=True)

    def _flush(self, key: str, stream: _Stream[T], *, remember: bool) -> None:
        """Hand on everything held, in order, past the gaps (remembered as skipped)."""
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        for seq in sorted(stream.held):
            message_id, item = stream.held.pop(seq)
            if remember:
                for missing in range(stream.next, seq):
                    stream.skipped[missing] = None
                    self.skipped_total += 1
                while len(stream.skipped) > MAX_SKIPPED:
                    del stream.skipped[next(iter(stream.skipped))]
            self._hand_on(key, stream, seq, message_id, item)

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [
            key
            for key, stream in self._streams.items()
            if not stream.held and now - stream.active > self._idle_evict
        ]
        for key in idle:
            del self._streams[key]
