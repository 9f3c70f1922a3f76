"""Header escaping (STOMP 1.1 and 1.2, "Value Encoding").

STOMP 1.0 has no escaping. 1.1 defines ``\\n``, ``\\c`` and ``\\\\``; 1.2 adds ``\\r``.
We escape and accept ``\\r`` in 1.1 as well (1.1 has no other way to carry a CR, and
no 1.1 peer sends a literal ``\\r`` meaning something else). Any other escape
sequence is a fatal protocol error. CONNECT, STOMP and CONNECTED frames are never
escaped; the parser and serializer decide that, not this module.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EscapeError", "escape", "unescape"]

_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c"})
_UNESCAPES: Final = {"\\\\": "\\", "\\r": "\r", "\\n": "\n", "\\c": ":"}
_SEQUENCE: Final = re.compile(r"\\.?", re.DOTALL)


class EscapeError(ValueError):
    """An undefined escape sequence; ``sequence`` is the offending text."""

    def __init__(self, sequence: str) -> None:
        super().__init__(sequence)
        self.sequence = sequence


def escape(value: str) -> str:
    """Escape a header name or value for STOMP 1.1/1.2."""
    return value.translate(_ESCAPES)


def _replace(match: re.Match[str]) -> str:
    text = match.group()
    try:
        return _UNESCAPES[text]
    except KeyError:
        raise EscapeError(text) from None


def unescape(value: str) -> str:
    """Undo :func:`escape`; raise :class:`EscapeError` on an undefined sequence."""
    if "\\" not in value:
        return value
    return _SEQUENCE.sub(_replace, value)
