"""Abuse limit settings from the environment, breach kinds, frame-size and subscription checks."""

from __future__ import annotations

import pytest

from gateway.auth.errors import LimitExceeded
from gateway.auth.limits import (
    BREACH_KINDS,
    AbuseLimits,
    Breach,
    check_frame_size,
    check_subscriptions,
)

# -- sizes and counts --------------------------------------------------------------------------


def test_sizes_and_counts() -> None:
    limits = AbuseLimits(max_subscriptions=2, max_frame_size=1000, bytes_burst=1000)
    assert check_subscriptions(1, limits) is None
    assert check_subscriptions(2, limits) == Breach(
        "subscriptions", "too many subscriptions: 3 > max_subscriptions 2"
    )
    assert check_frame_size(1000, limits) is None
    assert check_frame_size(1001, limits) == Breach(
        "frame_size", "frame too large: 1001 bytes > max_frame_size 1000"
    )


def test_breach_kinds_are_documented() -> None:
    assert set(BREACH_KINDS) >= {
        "origin",
        "connections_per_ip",
        "connections_per_user",
        "frames_per_second",
        "bytes_per_second",
        "subscriptions",
        "connect_timeout",
        "idle_timeout",
        "frame_size",
    }
    error = Breach("frame_size", "m").error()
    assert isinstance(error, LimitExceeded)
    assert (error.kind, error.message, error.detail) == ("frame_size", "Frame too large", "m")


# -- settings ----------------------------------------------------------------------------------


def test_limits_from_env() -> None:
    assert AbuseLimits.from_env({}) == AbuseLimits()
    limits = AbuseLimits.from_env(
        {
            "STOMPGATE_ALLOWED_ORIGINS": "https://app.example.com, https://*.example.org",
            "STOMPGATE_REQUIRE_ORIGIN": "true",
            "STOMPGATE_MAX_CONNECTIONS_PER_IP": "5",
            "STOMPGATE_MAX_CONNECTIONS_PER_USER": "2",
            "STOMPGATE_FRAMES_PER_SECOND": "10.5",
            "STOMPGATE_FRAMES_BURST": "20",
            "STOMPGATE_BYTES_PER_SECOND": "1000",
            "STOMPGATE_BYTES_BURST": "65536",
            "STOMPGATE_MAX_SUBSCRIPTIONS": "7",
            "STOMPGATE_CONNECT_TIMEOUT": "3",
            "STOMPGATE_IDLE_TIMEOUT": "0",
            "STOMPGATE_MAX_FRAME_SIZE": "65536",
            "STOMPGATE_MAX_DESTINATION_LENGTH": "128",
        }
    )
    assert limits == AbuseLimits(
        origins=("https://app.example.com", "https://*.example.org"),
        require_origin=True,
        max_connections_per_ip=5,
        max_connections_per_user=2,
        frames_per_second=10.5,
        frames_burst=20,
        bytes_per_second=1000,
        bytes_burst=65536,
        max_subscriptions=7,
        connect_timeout=3,
        idle_timeout=0,
        max_frame_size=65536,
        max_destination_length=128,
    )


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            {"STOMPGATE_MAX_CONNECTIONS_PER_IP": "-1"},
            "STOMPGATE_MAX_CONNECTIONS_PER_IP must be >= 0",
        ),
        ({"STOMPGATE_FRAMES_BURST": "lots"}, "STOMPGATE_FRAMES_BURST must be an integer"),
        ({"STOMPGATE_IDLE_TIMEOUT": "inf"}, "STOMPGATE_IDLE_TIMEOUT must be a finite number"),
        ({"STOMPGATE_IDLE_TIMEOUT": "nan"}, "STOMPGATE_IDLE_TIMEOUT must be a finite number"),
        ({"STOMPGATE_BYTES_BURST": "1000"}, "bytes_burst (1000) must be >= max_frame_size"),
        ({"STOMPGATE_FRAMES_BURST": "0"}, "frames_burst must be >= 1"),
    ],
)
def test_limits_from_env_errors(env: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        AbuseLimits.from_env(env)
