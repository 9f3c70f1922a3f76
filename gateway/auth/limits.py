"""Abuse limits: the settings, the breach kinds and the pure per-frame checks.

``AbuseLimits`` holds every limit (Origin allow-list, connection counts, rates, timeouts,
sizes); the objects that enforce them live beside it, one job each: ``origin`` (the
WebSocket ``Origin`` allow-list), ``rates`` (token buckets per session), ``counter``
(connections per IP and per user, the only one with I/O: Redis).  This module is pure: no
clock, no I/O.  The transports own the timers and sockets and ask these objects what to do.

Each breach has a stable *kind* (``BREACH_KINDS``: the label of the breach metric, e.g.
``stompgate_limit_breaches_total{kind="frames_per_second"}``) and an exact text, the ERROR's
body (its short ``message`` comes from the kind: ``gateway.auth.errors.LIMIT_MESSAGES``).  On a
breach the transport sends that ERROR, closes the session, and increments the metric.
"Nothing already accepted lost": limits are checked *before* a frame is handed to the
session, so the refused frame is the only one not processed; receipts and broker confirms
for earlier frames are flushed before the ERROR.

Setting a numeric limit to 0 disables it (documented in docs/security.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.auth import _env
from gateway.auth.errors import LimitExceeded

__all__ = [
    "BREACH_KINDS",
    "AbuseLimits",
    "Breach",
    "LimitExceeded",
    "check_frame_size",
    "check_subscriptions",
]

BREACH_KINDS = (
    "origin",
    "connections_per_ip",
    "connections_per_user",
    "frames_per_second",
    "bytes_per_second",
    "subscriptions",
    "connect_timeout",
    "idle_timeout",
    "frame_size",
    "buffered_bytes",
    "http_header_timeout",
)

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AbuseLimits:
    """Per-connection and per-user limits.  Environment variables (prefix ``STOMPGATE_``):

    ================================  ============================  ==========================
    variable                          field                         default
    ================================  ============================  ==========================
    ``ALLOWED_ORIGINS``               ``origins``                   empty: same host only
    ``REQUIRE_ORIGIN``                ``require_origin``            ``false``
    ``MAX_CONNECTIONS_PER_IP``        ``max_connections_per_ip``    ``100``
    ``MAX_CONNECTIONS_PER_USER``      ``max_connections_per_user``  ``20``
    ``FRAMES_PER_SECOND``             ``frames_per_second``         ``50``
    ``FRAMES_BURST``                  ``frames_burst``              ``100``
    ``BYTES_PER_SECOND``              ``bytes_per_second``          ``1000000``
    ``BYTES_BURST``                   ``bytes_burst``               ``8388608`` (8 MiB)
    ``MAX_SUBSCRIPTIONS``             ``max_subscriptions``         ``256``
    ``CONNECT_TIMEOUT``               ``connect_timeout``           ``10`` seconds
    ``IDLE_TIMEOUT``                  ``idle_timeout``              ``120`` seconds
    ``MAX_FRAME_SIZE``                ``max_frame_size``            ``4194304`` (4 MiB)
    ``MAX_DESTINATION_LENGTH``        ``max_destination_length``    ``255`` bytes
    ================================  ============================  ==========================
    """

    origins: tuple[str, ...] = ()
    require_origin: bool = False
    max_connections_per_ip: int = 100
    max_connections_per_user: int = 20
    frames_per_second: float = 50.0
    frames_burst: int = 100
    bytes_per_second: float = 1_000_000.0
    bytes_burst: int = 8 * MIB
    max_subscriptions: int = 256
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0
    max_frame_size: int = 4 * MIB
    max_destination_length: int = 255

    def __post_init__(self) -> None:
        numbers: dict[str, float] = {
            "max_connections_per_ip": self.max_connections_per_ip,
            "max_connections_per_user": self.max_connections_per_user,
            "frames_per_second": self.frames_per_second,
            "frames_burst": self.frames_burst,
            "bytes_per_second": self.bytes_per_second,
            "bytes_burst": self.bytes_burst,
            "max_subscriptions": self.max_subscriptions,
            "connect_timeout": self.connect_timeout,
            "idle_timeout": self.idle_timeout,
            "max_frame_size": self.max_frame_size,
            "max_destination_length": self.max_destination_length,
        }
        for name, value in numbers.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.frames_per_second and self.frames_burst < 1:
            raise ValueError("frames_burst must be >= 1 when frames_per_second is set")
        if self.bytes_per_second and self.max_frame_size and self.bytes_burst < self.max_frame_size:
            raise ValueError(
                f"bytes_burst ({self.bytes_burst}) must be >= max_frame_size "
                f"({self.max_frame_size}), or a largest allowed frame could never pass"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_") -> AbuseLimits:
        d = cls()
        p = prefix
        return cls(
            origins=_env.get_list(environ, f"{p}ALLOWED_ORIGINS", d.origins),
            require_origin=_env.get_bool(environ, f"{p}REQUIRE_ORIGIN", d.require_origin),
            max_connections_per_ip=_env.get_int(
                environ, f"{p}MAX_CONNECTIONS_PER_IP", d.max_connections_per_ip
            ),
            max_connections_per_user=_env.get_int(
                environ, f"{p}MAX_CONNECTIONS_PER_USER", d.max_connections_per_user
            ),
            frames_per_second=_env.get_float(environ, f"{p}FRAMES_PER_SECOND", d.frames_per_second),
            frames_burst=_env.get_int(environ, f"{p}FRAMES_BURST", d.frames_burst),
            bytes_per_second=_env.get_float(environ, f"{p}BYTES_PER_SECOND", d.bytes_per_second),
            bytes_burst=_env.get_int(environ, f"{p}BYTES_BURST", d.bytes_burst),
            max_subscriptions=_env.get_int(environ, f"{p}MAX_SUBSCRIPTIONS", d.max_subscriptions),
            connect_timeout=_env.get_float(environ, f"{p}CONNECT_TIMEOUT", d.connect_timeout),
            idle_timeout=_env.get_float(environ, f"{p}IDLE_TIMEOUT", d.idle_timeout),
            max_frame_size=_env.get_int(environ, f"{p}MAX_FRAME_SIZE", d.max_frame_size),
            max_destination_length=_env.get_int(
                environ, f"{p}MAX_DESTINATION_LENGTH", d.max_destination_length
            ),
        )


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit breach: ``kind`` labels the metric and picks the ERROR's short ``message``
    (``gateway.auth.errors.LIMIT_MESSAGES``); ``message`` is the ERROR frame's body."""

    kind: str
    message: str

    def error(self) -> LimitExceeded:
        return LimitExceeded(self.kind, self.message)


# -- sizes and counts --------------------------------------------------------------------------


def check_frame_size(size: int, limits: AbuseLimits) -> Breach | None:
    if limits.max_frame_size and size > limits.max_frame_size:
        return Breach(
            "frame_size", f"frame too large: {size} bytes > max_frame_size {limits.max_frame_size}"
        )
    return None


def check_subscriptions(current: int, limits: AbuseLimits) -> Breach | None:
    """Before adding a subscription to a session that has ``current`` of them."""
    if limits.max_subscriptions and current + 1 > limits.max_subscriptions:
        return Breach(
            "subscriptions",
            f"too many subscriptions: {current + 1} > max_subscriptions {limits.max_subscriptions}",
        )
    return None
