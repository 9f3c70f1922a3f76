"""`PresenceSettings`, from the environment (``STOMPGATE_PRESENCE*``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["PresenceSettings"]

_PREFIX = "STOMPGATE_PRESENCE"


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    """Presence (``gateway/presence/``).

    Environment variables:

    ===========================  ============  ===================================================
    variable                     default       meaning
    ===========================  ============  ===================================================
    ``PRESENCE``                 ``true``      track presence (``false``: no presence at all)
    ``PRESENCE_GRACE``           ``30``        seconds with no live session before a user is offline
    ``PRESENCE_LEASE``           grace / 3     seconds a node's sessions count without its renewal
    ``PRESENCE_INTERVAL``        ``1``         seconds between a node's presence steps in Redis
    ``PRESENCE_ACTIVE_EVERY``    ``30``        seconds between two last-active writes of a user
    ``PRESENCE_FANOUT_MAX``      ``100``       members above which a room reads presence on demand
    ===========================  ============  ===================================================
    """

    enabled: bool = True
    grace: float = 30.0
    lease: float | None = None  # None: grace / 3
    interval: float = 1.0
    active_every: float = 30.0
    fanout_max: int = 100

    def __post_init__(self) -> None:
        if self.grace <= 0:
            raise ValueError(f"{_PREFIX}_GRACE must be positive, got {self.grace:g}")
        if self.interval <= 0:
            raise ValueError(f"{_PREFIX}_INTERVAL must be positive, got {self.interval:g}")
        if self.lease_seconds <= self.interval:
            raise ValueError(
                f"{_PREFIX}_LEASE ({self.lease_seconds:g} s) must be longer than "
                f"{_PREFIX}_INTERVAL ({self.interval:g} s): the lease is renewed every interval"
            )
        if self.lease_seconds + self.interval > self.grace:
            raise ValueError(
                f"{_PREFIX}_LEASE + {_PREFIX}_INTERVAL ({self.lease_seconds + self.interval:g} s)"
                f" must not exceed {_PREFIX}_GRACE ({self.grace:g} s): a dead node's users"
                " must be found before their grace is over"
            )
        if self.active_every <= 0:
            raise ValueError(f"{_PREFIX}_ACTIVE_EVERY must be positive, got {self.active_every:g}")
        if self.fanout_max < 0:
            raise ValueError(f"{_PREFIX}_FANOUT_MAX must not be negative, got {self.fanout_max}")

    @property
    def lease_seconds(self) -> float:
        return self.grace / 3 if self.lease is None else self.lease

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PresenceSettings:
        """From ``STOMPGATE_PRESENCE*`` (an empty variable counts as unset); `ValueError`
        naming the variable for a value that cannot be used."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, suffix in _VARIABLES:
            text = env.get(f"{_PREFIX}{suffix}", "").strip()
            if not text:
                continue
            try:
                values[name] = _PARSERS[name](text)
            except ValueError:
                raise ValueError(f"{_PREFIX}{suffix}: cannot use {text!r}") from None
        return cls(**values)  # type: ignore[arg-type]


_VARIABLES = (
    ("enabled", ""),
    ("grace", "_GRACE"),
    ("lease", "_LEASE"),
    ("interval", "_INTERVAL"),
    ("active_every", "_ACTIVE_EVERY"),
    ("fanout_max", "_FANOUT_MAX"),
)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_PARSERS: dict[str, Callable[[str], object]] = {
    "enabled": _boolean,
    "grace": float,
    "lease": float,
    "interval": float,
    "active_every": float,
    "fanout_max": int,
}
