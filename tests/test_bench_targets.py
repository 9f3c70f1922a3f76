"""``make bench``'s targets table (issue 19): each target's figure is the median over the
rounds of the round's gateway/Web-STOMP ratio, judged against the limit of its room size; the
moderate load is a fifth of Web-STOMP's maximum in the round. Synthetic results: no servers."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.bench_gateway import (
    IdleResult,
    Scenario,
    TrafficResult,
    moderate_rate,
    print_targets,
)


def traffic(
    us: float,
    *,
    p99: float = 1.0,
    beam: float = 0.0,
    rate: float = 1000.0,
    gateway_kernel: float | None = None,
) -> TrafficResult:
    """A gateway run when ``gateway_kernel`` is given (the gateway process is ``us - beam``
    of which ``gateway_kernel`` in the kernel), else one whose only process is beam.smp."""
    if gateway_kernel is None:
        procs = {"beam.smp": beam} if beam else {}
        kernel: dict[str, float] = {}
    else:
        procs = {"gateway": us - beam, "beam.smp": beam}
        kernel = {"gateway": gateway_kernel, "beam.smp": 0.0}
    return TrafficResult(
        delivered_per_s=rate,
        published_per_s=rate,
        cpu_us_per_msg=us,
        cpu_by_proc={},
        cpu_us_by_proc=procs,
        sys_us_by_proc=kernel,
        sleeps_per_send={},
        p50_ms=p99 / 2,
        p99_ms=p99,
        p999_ms=p99,
        loadgen_cpu_pct=0.0,
        other_cpu_pct=0.0,
        errors=0,
        last_error="",
    )


def target_lines(scenarios: list[Scenario], capsys: pytest.CaptureFixture[str]) -> list[str]:
    print_targets(scenarios)
    return capsys.readouterr().out.splitlines()


def line_of(lines: list[str], start: str, room: str) -> str:
    found = [line for line in lines if line.startswith(start) and f" {room} " in line]
    assert len(found) == 1, lines
    return found[0]


def test_a_ratio_is_the_median_of_the_rounds_and_the_limit_follows_the_room_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = Scenario("pairs", "pairs", rooms=200, subs=2)
    rooms = Scenario("rooms100", "rooms", rooms=100, subs=10)
    # pairs at full speed: ratios 0.4, 0.6, 0.45 -> median 0.45 <= 0.5; rooms of 10: the
    # same ratios fail 0.25. Moderate: pairs 0.9, 0.7, 0.75 -> 0.75 <= 0.8 passes; rooms of
    # 10 the same ratios fail 0.5. p99: one round above Web-STOMP's, the median below.
    for full, moderate, p99 in ((0.4, 0.9, 1.2), (0.6, 0.7, 0.5), (0.45, 0.75, 0.9)):
        for sc in (pairs, rooms):
            sc.rounds.append(
                {
                    "gateway/max": traffic(100 * full, beam=20 * full),
                    "web-stomp/max": traffic(100.0),
                    "gateway": traffic(100 * moderate, p99=p99, beam=50.0),
                    "web-stomp": traffic(100.0, p99=1.0),
                }
            )
    lines = target_lines([pairs, rooms], capsys)
    full_pairs = line_of(lines, "CPU/msg, full speed", "200x2")
    assert "0.45 (0.40, 0.60, 0.45)" in full_pairs
    assert full_pairs.endswith("pass")
    assert line_of(lines, "CPU/msg, full speed", "100x10").endswith("FAIL")
    moderate_pairs = line_of(lines, "CPU/msg, moderate load", "200x2")
    assert "0.75 (0.90, 0.70, 0.75)" in moderate_pairs
    assert moderate_pairs.endswith("pass")
    assert line_of(lines, "CPU/msg, moderate load", "100x10").endswith("FAIL")
    latency = line_of(lines, "p99 latency, moderate load", "200x2")
    assert "0.90 (1.20, 0.50, 0.90)" in latency
    assert latency.endswith("pass")
    share = line_of(lines, "broker CPU via gateway, full speed", "200x2")
    assert "9.0 of 45.0 us" in share
    assert "20 % of total" in share


def test_memory_passes_at_10_kib_per_session(capsys: pytest.CaptureFixture[str]) -> None:
    def idle(per_session: float) -> Scenario:
        sc = Scenario("idle", "idle", idle=1000)
        sc.results = {
            "gateway": IdleResult(1000, 0, {"gateway": per_session, "beam.smp": 0.0}, 1.0, {}),
            "web-stomp": IdleResult(1000, 0, {"beam.smp": 120_000.0}, 1.0, {}),
        }
        return sc

    assert line_of(target_lines([idle(10240)], capsys), "RSS per idle", "sessions").endswith("pass")
    assert line_of(target_lines([idle(10241)], capsys), "RSS per idle", "sessions").endswith("FAIL")


def test_the_moderate_load_is_a_fifth_of_web_stomps_maximum_unless_fixed() -> None:
    sc = Scenario("pairs", "pairs", rooms=200, subs=2)
    args = argparse.Namespace(rate=0.0, moderate=0.2)
    sc.results = {"web-stomp/max": traffic(50.0, rate=12_000.0)}
    assert moderate_rate(sc, args) == pytest.approx(2_400.0)
    sc.rates.append(2_400.0)
    sc.results = {}  # Web-STOMP skipped this round: the last round's load
    assert moderate_rate(sc, args) == 2_400.0
    assert moderate_rate(sc, argparse.Namespace(rate=4_000.0, moderate=0.2)) == 4_000.0


def test_the_floor_is_the_broker_and_the_gateways_kernel_time_against_web_stomps_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A target whose floor is above its limit cannot be met by user-space work: the floor
    row says "beyond"; one below it says "info"."""
    pairs = Scenario("pairs", "pairs", rooms=200, subs=2)
    # full speed: gateway 60 = 20 broker + 40 gateway (10 kernel) against 100 -> floor 0.30
    # moderate: gateway 150 = 70 broker + 80 gateway (30 kernel) against 100 -> floor 1.00
    pairs.rounds.append(
        {
            "gateway/max": traffic(60.0, beam=20.0, gateway_kernel=10.0),
            "web-stomp/max": traffic(100.0, beam=100.0),
            "gateway": traffic(150.0, beam=70.0, gateway_kernel=30.0),
            "web-stomp": traffic(100.0, beam=100.0),
        }
    )
    lines = target_lines([pairs], capsys)
    floors = [line for line in lines if line.startswith("  floor")]
    assert len(floors) == 2, lines
    assert "30.0 us" in floors[0]
    assert "0.30 (0.30)" in floors[0]
    assert floors[0].endswith("info")
    assert "100.0 us" in floors[1]
    assert "1.00 (1.00)" in floors[1]
    assert floors[1].endswith("beyond")
