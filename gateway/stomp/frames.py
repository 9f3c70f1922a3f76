"""The STOMP frame value type and protocol constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_COMMANDS",
    "UNESCAPED_COMMANDS",
    "VERSIONS",
    "Frame",
    "HeartBeat",
]

#: Protocol versions this package speaks, oldest first.
VERSIONS: Final = ("1.0", "1.1", "1.2")

#: Commands a client may send.
CLIENT_COMMANDS: Final = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)

#: Commands only a server may send.
SERVER_COMMANDS: Final = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})

#: Frames whose headers are never escaped, in any version (spec 1.2, "Value Encoding").
UNESCAPED_COMMANDS: Final = frozenset({"CONNECT", "CONNECTED", "STOMP"})


@dataclass(frozen=True, slots=True)
class Frame:
    """One STOMP frame, headers already unescaped.

    Headers keep wire order and may repeat; per the spec the first occurrence wins.
    """

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Value of the first header called ``name``, else ``default``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class HeartBeat:
    """One or more EOLs received between frames (a client heart-beat)."""
