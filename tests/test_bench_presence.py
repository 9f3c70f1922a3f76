"""``make bench-presence``'s arithmetic: Redis command counts and presence's share of the CPU
(the benchmark itself is not part of ``make test``)."""

from __future__ import annotations

import pytest

from benchmarks.bench_presence import (
    Phase,
    Run,
    command_calls,
    connect_frame,
    presence_cost_pct,
    report,
)


def test_commands_and_scripts_are_counted_from_commandstats() -> None:
    stats = {
        "cmdstat_evalsha": {"calls": 10, "usec": 5},
        "cmdstat_hset": {"calls": 300, "usec": 5},
        "cmdstat_zadd": {"calls": 12, "usec": 5},
    }
    assert command_calls(stats) == (322, 10)
    assert command_calls({}) == (0, 0)


def run(mode: str, idle_cpu: float) -> Run:
    result = Run(mode, 10_000)
    result.phases["idle"] = Phase(seconds=60.0, cpu=idle_cpu, calls=600, scripts=120)
    return result


def test_presence_cost_is_the_idle_difference_per_10000_sessions() -> None:
    on, off = run("on", 3.3), run("off", 3.0)
    assert presence_cost_pct(on, off) == pytest.approx(0.5)  # 0.3 s of CPU in 60 s
    assert on.cpu_per_session_minute_us() == pytest.approx(330.0)
    text = report([on, off])
    assert "+0.50 % of one core per 10,000 sessions (target < 1 %: met)" in text
    assert "+0.0 Redis commands/s" in text


def test_a_client_connects_with_heart_beats() -> None:
    frame = connect_frame("u00007", 10_000)
    assert frame.startswith(b"CONNECT\naccept-version:1.2\n")
    assert b"login:u00007\n" in frame
    assert b"heart-beat:10000,10000\n" in frame
    assert frame.endswith(b"\n\n\x00")
