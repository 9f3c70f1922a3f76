"""The soak's trend check (benchmarks/soak.py): a series that keeps climbing is GROWING, one
that levels off after the warm-up is flat, and a short run says it cannot tell."""

from __future__ import annotations

from benchmarks.soak import trend


def test_a_leak_is_growing() -> None:
    rss = [70.0 + 3 * i for i in range(30)]  # 3 MiB per sample, for ever
    assert trend(rss, 1 / 3, 0.15, 8.0).startswith("GROWING")


def test_a_warm_up_then_a_plateau_is_flat() -> None:
    rss = [40.0 + 4 * i for i in range(10)] + [76.0, 77.0, 76.5] * 10
    assert trend(rss, 1 / 3, 0.15, 8.0).startswith("flat")


def test_growth_within_the_slack_is_said_but_not_failed() -> None:
    redis_mib = [4.0 + 0.1 * i for i in range(30)]
    assert trend(redis_mib, 0.0, 0.15, 2.0).startswith("rising")


def test_too_few_samples() -> None:
    assert trend([1.0, 2.0], 1 / 3, 0.15, 1.0) == "too short to tell"
