"""MESSAGE frames prepared once per broker delivery and rendered per session.

A chat message fans out to many sessions that differ only in ``subscription``,
``message-id`` and ``ack``. :class:`PreparedMessage` caches, per protocol version, the
encoded tail of the frame (``destination``, the other headers, ``content-length``, the
blank line, the body and the NUL); :meth:`PreparedMessage.render` only formats the
three per-session headers and concatenates bytes.

Header order: ``subscription``, ``message-id``, ``ack`` (if any), ``destination``, then
the remaining headers in the order given, then ``content-length``. Given headers named
``subscription``, ``message-id``, ``ack``, ``destination`` or ``content-length`` are
dropped (the session-specific and computed values win). For STOMP 1.0, which cannot
escape, given headers that cannot be represented (``:`` or LF in a name; LF in a value,
or a value ending in CR) are dropped too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .escaping import escape
from .frames import VERSIONS
from .serializer import encode_headers

__all__ = ["PreparedMessage", "message_head"]

_RESERVED: Final = frozenset({"subscription", "message-id", "ack", "destination", "content-length"})


def _representable_10(name: str, value: str) -> bool:
    return not (":" in name or "\n" in name or "\n" in value or value.endswith("\r"))


class PreparedMessage:
    """A MESSAGE frame minus its per-session headers."""

    __slots__ = ("_tails", "body", "destination", "headers")

    def __init__(self, destination: str, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.destination = destination
        self.headers: tuple[tuple[str, str], ...] = tuple(
            (name, value) for name, value in headers if name not in _RESERVED
        )
        self.body = body
        self._tails: dict[str, bytes] = {}

    def tail(self, version: str) -> bytes:
        """Encoded frame from the ``destination`` header to the NUL (cached)."""
        tail = self._tails.get(version)
        if tail is None:
            if version not in VERSIONS:
                raise ValueError(f"unsupported STOMP version {version!r}")
            headers = [("destination", self.destination)]
            if version == "1.0":
                headers.extend(h for h in self.headers if _representable_10(*h))
            else:
                headers.extend(self.headers)
            headers.append(("content-length", str(len(self.body))))
            head = encode_headers(headers, version != "1.0")
            tail = b"".join((head.encode(), b"\n", self.body, b"\x00"))
            self._tails[version] = tail
        return tail

    def render(
        self, version: str, subscription: str, message_id: str, ack: str | None = None
    ) -> bytes:
        """The complete MESSAGE frame for one session."""
        tail = self._tails.get(version) or self.tail(version)
        return _head(version, subscription, message_id, ack).encode() + tail

    def render_numbered(self, version: str, head: bytes, number: int) -> bytes:
        """What ``render(version, subscription, prefix + str(number))`` returns, given
        ``head = message_head(version, subscription, prefix)``: the fan-out's hot path,
        with the per-session part of the head encoded once per subscription."""
        tail = self._tails.get(version) or self.tail(version)
        return b"%s%d\n%s" % (head, number, tail)


def message_head(version: str, subscription: str, message_id_prefix: str) -> bytes:
    """The start of a MESSAGE frame up to the digits that end its ``message-id``, for
    :meth:`PreparedMessage.render_numbered` (no ``ack`` header). Digits never need
    escaping, so rendering ``message_id_prefix + digits`` gives these bytes, the digits
    and the end of the line."""
    head = _head(version, subscription, message_id_prefix + "0", None)
    if not head.endswith("0\n"):  # the message-id line is the last one
        raise ValueError(f"message-id prefix {message_id_prefix!r} cannot be rendered")
    return head[:-2].encode()


def _head(version: str, subscription: str, message_id: str, ack: str | None) -> str:
    """``MESSAGE`` and the per-session headers, escaped for ``version``."""
    if ack is None:
        head = f"MESSAGE\nsubscription:{subscription}\nmessage-id:{message_id}\n"
        count = 2
    else:
        head = f"MESSAGE\nsubscription:{subscription}\nmessage-id:{message_id}\nack:{ack}\n"
        count = 3
    if head.count(":") != count or head.count("\n") != count + 1 or "\\" in head or "\r" in head:
        headers = [("subscription", subscription), ("message-id", message_id)]
        if ack is not None:
            headers.append(("ack", ack))
        if version == "1.0":
            return "MESSAGE\n" + encode_headers(headers, False)
        return "MESSAGE\n" + "".join(f"{name}:{escape(value)}\n" for name, value in headers)
    return head
