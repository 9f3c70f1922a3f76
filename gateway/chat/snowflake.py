"""64-bit sortable Snowflake ids: 41 bits of milliseconds, 10 bits of node, 12 of sequence.

Layout (the sign bit stays 0, so ids fit a signed 64-bit integer)::

    | 0 | 41 bits: ms since EPOCH_MS | 10 bits: node id | 12 bits: sequence |

The generator is pure: the caller passes the current time, so tests drive it with any clock.
Ids from one generator strictly increase even when the clock steps backwards: the generator
keeps the last timestamp it used and never goes below it; when the 4096 sequence numbers of a
millisecond run out it moves on to the next millisecond *logically*, ahead of the clock.
`SnowflakeGenerator.follow` moves it past an id another node issued (a hybrid logical clock:
the chat layer uses it so ids rise within a room even when the nodes' clocks disagree).
41 bits of milliseconds last until 2095.
"""

from __future__ import annotations

from typing import NamedTuple

EPOCH_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z in Unix milliseconds."""

TIMESTAMP_BITS = 41
NODE_BITS = 10
SEQUENCE_BITS = 12

MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_ID = (1 << (TIMESTAMP_BITS + NODE_BITS + SEQUENCE_BITS)) - 1

_NODE_SHIFT = SEQUENCE_BITS
_TIME_SHIFT = SEQUENCE_BITS + NODE_BITS


class SnowflakeParts(NamedTuple):
    ts_ms: int
    """Unix epoch milliseconds (the custom epoch already added back)."""
    node: int
    seq: int


class ClockOverflowError(RuntimeError):
    """The 41-bit timestamp ran out (year 2095), or the clock is before the epoch."""


def compose(ts_ms: int, node: int, seq: int) -> int:
    """The id for Unix milliseconds ``ts_ms``, ``node`` and ``seq``."""
    elapsed = ts_ms - EPOCH_MS
    if not 0 <= elapsed <= MAX_TIMESTAMP:
        raise ClockOverflowError(f"timestamp {ts_ms} is outside the Snowflake range")
    if not 0 <= node <= MAX_NODE or not 0 <= seq <= MAX_SEQUENCE:
        raise ValueError(f"node {node} or sequence {seq} out of range")
    return (elapsed << _TIME_SHIFT) | (node << _NODE_SHIFT) | seq


def parse(snowflake: int) -> SnowflakeParts:
    """Split an id into (Unix ms, node, sequence)."""
    if not 0 <= snowflake <= MAX_ID:
        raise ValueError(f"{snowflake} is not a Snowflake id")
    return SnowflakeParts(
        ts_ms=(snowflake >> _TIME_SHIFT) + EPOCH_MS,
        node=(snowflake >> _NODE_SHIFT) & MAX_NODE,
        seq=snowflake & MAX_SEQUENCE,
    )


def min_id_at(ts_ms: int) -> int:
    """The smallest id any node can issue at Unix milliseconds ``ts_ms`` (clamped)."""
    elapsed = min(max(ts_ms - EPOCH_MS, 0), MAX_TIMESTAMP)
    return elapsed << _TIME_SHIFT


class SnowflakeGenerator:
    """Issues strictly increasing ids for one node id.

    ``last_ms`` seeds the generator with a timestamp it must not reuse (for instance the
    high-water mark a previous holder of the same node id left behind); the first id is then
    issued at ``last_ms + 1`` or later.
    """

    __slots__ = ("_last_ms", "_node", "_seq")

    def __init__(self, node: int, *, last_ms: int | None = None) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node id {node} is not in 0..{MAX_NODE}")
        self._node = node
        self._last_ms = -1 if last_ms is None else last_ms
        self._seq = MAX_SEQUENCE  # so the next id at last_ms moves to last_ms + 1

    @property
    def node(self) -> int:
        return self._node

    @property
    def last_ms(self) -> int:
        """The (Unix ms) timestamp of the last id issued, or the seed."""
        return self._last_ms

    def next_id(self, now_ms: int) -> int:
        """The next id at Unix milliseconds ``now_ms`` (clock steps backwards are absorbed)."""
        if now_ms > self._last_ms:
            self._last_ms, self._seq = now_ms, 0
        elif self._seq < MAX_SEQUENCE:
            self._seq += 1
        else:
            self._last_ms, self._seq = self._last_ms + 1, 0
        return compose(self._last_ms, self._node, self._seq)

    __call__ = next_id

    def follow(self, snowflake: int) -> None:
        """Make every later id greater than ``snowflake`` (issued by any node).

        The next id then takes a timestamp above ``snowflake``'s even if the clock is behind
        it (and the generator stays ahead of the clock until the clock catches up).
        """
        ts_ms = parse(snowflake).ts_ms
        if ts_ms >= self._last_ms:
            self._last_ms, self._seq = ts_ms, MAX_SEQUENCE
