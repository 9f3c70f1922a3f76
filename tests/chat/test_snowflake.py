from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.snowflake import (
    EPOCH_MS,
    MAX_ID,
    MAX_NODE,
    MAX_SEQUENCE,
    MAX_TIMESTAMP,
    ClockOverflowError,
    SnowflakeGenerator,
    compose,
    min_id_at,
    parse,
)

T0 = EPOCH_MS + 1_000_000


def test_epoch_is_2026() -> None:
    assert EPOCH_MS == 1767225600000  # datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000


def test_layout() -> None:
    assert compose(EPOCH_MS, 0, 0) == 0
    assert compose(EPOCH_MS + 1, 0, 0) == 1 << 22
    assert compose(EPOCH_MS, 1, 0) == 1 << 12
    assert compose(EPOCH_MS + MAX_TIMESTAMP, MAX_NODE, MAX_SEQUENCE) == MAX_ID == 2**63 - 1


@given(
    ts=st.integers(EPOCH_MS, EPOCH_MS + MAX_TIMESTAMP),
    node=st.integers(0, MAX_NODE),
    seq=st.integers(0, MAX_SEQUENCE),
)
def test_parse_inverts_compose(ts: int, node: int, seq: int) -> None:
    assert parse(compose(ts, node, seq)) == (ts, node, seq)
    assert min_id_at(ts) <= compose(ts, node, seq)


def test_out_of_range() -> None:
    with pytest.raises(ClockOverflowError):
        compose(EPOCH_MS - 1, 0, 0)
    with pytest.raises(ValueError, match="out of range"):
        compose(EPOCH_MS, MAX_NODE + 1, 0)
    with pytest.raises(ValueError, match="not a Snowflake"):
        parse(-1)
    with pytest.raises(ValueError, match="node id"):
        SnowflakeGenerator(1024)


def test_sequence_within_a_millisecond_then_logical_advance() -> None:
    gen = SnowflakeGenerator(3)
    ids = [gen.next_id(T0) for _ in range(MAX_SEQUENCE + 2)]
    assert [parse(i).seq for i in ids[:3]] == [0, 1, 2]
    assert parse(ids[MAX_SEQUENCE]) == (T0, 3, MAX_SEQUENCE)
    assert parse(ids[-1]) == (T0 + 1, 3, 0)  # ran out: next millisecond, ahead of the clock


def test_clock_step_back_reuses_last_timestamp() -> None:
    gen = SnowflakeGenerator(1)
    a = gen.next_id(T0)
    b = gen.next_id(T0 - 5_000)
    assert b > a
    assert parse(b) == (T0, 1, 1)


def test_seed_skips_the_previous_holders_timestamps() -> None:
    gen = SnowflakeGenerator(1, last_ms=T0)
    assert parse(gen.next_id(T0 - 10)).ts_ms == T0 + 1
    assert parse(gen.next_id(T0 + 50)).ts_ms == T0 + 50


@given(
    node=st.integers(0, MAX_NODE),
    steps=st.lists(st.one_of(st.integers(-10_000, 10_000), st.just(0)), min_size=1, max_size=300),
    repeats=st.lists(st.integers(1, 50), min_size=1, max_size=300),
)
def test_ids_strictly_increase_across_any_clock(
    node: int, steps: list[int], repeats: list[int]
) -> None:
    gen = SnowflakeGenerator(node)
    now, last = T0, -1
    for step, repeat in zip(steps, repeats, strict=False):
        now += step
        for _ in range(repeat):
            new = gen.next_id(now)
            assert new > last
            assert parse(new).node == node
            last = new


def test_heavy_burst_stays_unique_and_sorted() -> None:
    gen = SnowflakeGenerator(9)
    ids = [gen.next_id(T0) for _ in range(3 * (MAX_SEQUENCE + 1))]
    assert ids == sorted(set(ids))
    assert parse(ids[-1]).ts_ms == T0 + 2
