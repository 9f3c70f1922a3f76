"""Frame serialization: frames in, bytes out.

Escaping follows the version exactly: none in 1.0, ``\\\\ \\r \\n \\c`` in 1.1 and 1.2
(see :mod:`.escaping`), and never in CONNECT, STOMP or CONNECTED frames. A header that
cannot be represented (a NUL anywhere, in any version: no escape exists for it; unescaped,
a name containing ``:``, CR or LF, or a value containing CR or LF) raises ``ValueError``:
that is a bug in the caller, which must not build such frames (a NUL would end the frame
where the peer reads it, a CR or LF would start a header the node never meant to send).

``serialize`` writes exactly the headers it is given; it never adds ``content-length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .escaping import escape
from .frames import UNESCAPED_COMMANDS, VERSIONS, Frame

__all__ = ["HEARTBEAT", "encode_headers", "serialize"]

#: A heart-beat: one EOL.
HEARTBEAT: Final = b"\n"


def encode_headers(headers: Sequence[tuple[str, str]], escaped: bool) -> str:
    """Header lines ``name:value\\n`` for ``headers``, escaped if ``escaped``.

    Fast path: one join plus a few C-level scans of the result; the per-header escaping
    loop runs only when a special character is present.
    """
    if not headers:
        return ""
    text = "".join([f"{name}:{value}\n" for name, value in headers])
    count = len(headers)
    if (
        text.count("\n") == count
        and text.count(":") == count
        and "\\" not in text
        and "\r" not in text
        and "\x00" not in text
    ):
        return text
    if "\x00" in text:
        raise ValueError(f"a header in {[name for name, _ in headers]} holds a NUL")
    if escaped:
        return "".join([f"{escape(name)}:{escape(value)}\n" for name, value in headers])
    for name, value in headers:
        if ":" in name or "\n" in name or "\r" in name or "\n" in value or "\r" in value:
            raise ValueError(f"header {name!r}: {value!r} cannot be represented without escaping")
    return text


def serialize(frame: Frame, version: str = "1.2") -> bytes:
    """Encode ``frame`` for a peer speaking ``version``."""
    if version not in VERSIONS:
        raise ValueError(f"unsupported STOMP version {version!r}")
    command = frame.command
    escaped = version != "1.0" and command not in UNESCAPED_COMMANDS
    head = encode_headers(frame.headers, escaped)
    return b"".join((f"{command}\n{head}\n".encode(), frame.body, b"\x00"))
