"""MESSAGE frames prepared once per broker delivery and rendered per session.

A chat message fans out to many sessions that differ only in ``subscription``,
``message-id`` and ``ack``. :class:`PreparedMessage` caches, per protocol version, the
encoded parts of the frame that are the same for every session: the ``destination`` line
with the ``message-id:`` that follows it, and the tail (``redelivered``, the other headers,
``content-length``, the blank line, the body and the NUL); :meth:`PreparedMessage.render`
only formats the per-session values and concatenates bytes.

Header order is RabbitMQ's STOMP plugin's, for clients that parse raw bytes:
``subscription``, ``destination``, ``message-id``, ``redelivered`` (if given), ``ack`` (if
any), then the remaining headers in the order given, then ``content-length``. Given headers
named ``subscription``, ``message-id``, ``ack``, ``destination`` or ``content-length`` are
dropped (the session-specific and computed values win), and so are repeats of
``redelivered`` after the first.

No header the node writes can end the frame early or start a new line (a relayed header
comes from another client, or from any AMQP publisher): a header whose name or value holds
a NUL is dropped in every version (no version can escape a NUL); CR, LF, ``:`` and ``\\``
are escaped in 1.1 and 1.2; STOMP 1.0 cannot escape, so there a header is dropped if its
name holds ``:``, CR, LF or NUL, or its value CR, LF or NUL. Per-session values (the
subscription id, the message id, the ack id) that cannot be written raise ``ValueError``:
the session refuses such subscription ids before they get here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .escaping import escape
from .frames import VERSIONS
from .serializer import encode_headers

__all__ = ["MessageHead", "PreparedMessage", "message_head", "representable"]

_RESERVED: Final = frozenset({"subscription", "message-id", "ack", "destination", "content-length"})
_REDELIVERED: Final = "redelivered"
_UNSAFE_10: Final = ("\n", "\r", "\x00")


class MessageHead:
    """The per-session start of a MESSAGE frame for one subscription (no ``ack``), made by
    :func:`message_head` for :meth:`PreparedMessage.render_numbered`: the ``MESSAGE`` line
    with the ``subscription`` header, and the encoded message-id prefix. The destination
    line comes between them, so the head keeps the frame start it last made (``start``,
    for the destination line ``lead``): a subscription that keeps receiving one
    destination joins the three once, not once per message."""

    __slots__ = ("id_prefix", "lead", "start", "subscription_line")

    def __init__(self, subscription_line: bytes, id_prefix: bytes) -> None:
        self.subscription_line = subscription_line
        self.id_prefix = id_prefix
        self.lead = b""
        self.start = b""


def representable(version: str, name: str, value: str) -> bool:
    """Whether a header can be written for a ``version`` peer without ending a line or the
    frame: never with a NUL; in 1.0 (no escaping) never with CR or LF, nor ``:`` in the name."""
    if version == "1.0":
        return ":" not in name and not any(c in name or c in value for c in _UNSAFE_10)
    return "\x00" not in name and "\x00" not in value


class PreparedMessage:
    """A MESSAGE frame minus its per-session headers."""

    __slots__ = ("_parts", "body", "destination", "headers")

    def __init__(self, destination: str, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.destination = destination
        kept: list[tuple[str, str]] = []
        redelivered: tuple[str, str] | None = None
        for header in headers:
            name = header[0]
            if name in _RESERVED:
                continue
            if name == _REDELIVERED:
                if redelivered is None:
                    redelivered = header
                continue
            kept.append(header)
        if redelivered is not None:
            kept.insert(0, redelivered)
        #: The headers as rendered after ``message-id``: ``redelivered`` first, if given.
        self.headers: tuple[tuple[str, str], ...] = tuple(kept)
        self.body = body
        # version -> (the destination line + "message-id:", the tail)
        self._parts: dict[str, tuple[bytes, bytes]] = {}

    def tail(self, version: str) -> bytes:
        """Encoded frame from the header after ``message-id`` to the NUL (cached)."""
        return (self._parts.get(version) or self._prepared(version))[1]

    def _prepared(self, version: str) -> tuple[bytes, bytes]:
        """(the destination line and ``message-id:``, the tail), encoded for ``version``."""
        if version not in VERSIONS:
            raise ValueError(f"unsupported STOMP version {version!r}")
        escaped = version != "1.0"
        headers = list(self.headers)
        headers.append(("content-length", str(len(self.body))))
        try:
            text = encode_headers(headers, escaped)
        except ValueError:  # rare: drop what this version cannot carry
            text = encode_headers([h for h in headers if representable(version, *h)], escaped)
        destination = self.destination
        if _plain(destination):
            lead = b"destination:" + destination.encode() + b"\nmessage-id:"
        else:
            lead = b"destination:%s\nmessage-id:" % _value(version, "destination", destination)
        parts = (lead, b"".join((text.encode(), b"\n", self.body, b"\x00")))
        self._parts[version] = parts
        return parts

    def render(
        self, version: str, subscription: str, message_id: str, ack: str | None = None
    ) -> bytes:
        """The complete MESSAGE frame for one session."""
        lead, tail = self._parts.get(version) or self._prepared(version)
        head = _subscription_line(version, subscription)
        number = _value(version, "message-id", message_id)
        if ack is None:
            return b"%s%s%s\n%s" % (head, lead, number, tail)
        line = b"ack:%s\n" % _value(version, "ack", ack)
        split = tail.index(b"\n") + 1 if tail.startswith(b"redelivered:") else 0
        return b"%s%s%s\n%s%s%s" % (head, lead, number, tail[:split], line, tail[split:])

    def render_numbered(self, version: str, head: MessageHead, number: int) -> bytes:
        """What ``render(version, subscription, prefix + str(number))`` returns, given
        ``head = message_head(version, subscription, prefix)``: the fan-out's hot path,
        with the per-session parts encoded once per subscription."""
        parts = self._parts.get(version) or self._prepared(version)
        lead = parts[0]
        if head.lead != lead:  # a new destination for this subscription
            head.lead = lead
            head.start = head.subscription_line + lead + head.id_prefix
        return b"%s%d\n%s" % (head.start, number, parts[1])


def message_head(version: str, subscription: str, message_id_prefix: str) -> MessageHead:
    """The per-session parts of a MESSAGE frame for
    :meth:`PreparedMessage.render_numbered` (no ``ack`` header): the ``MESSAGE`` line with
    the ``subscription`` header, and the message-id up to the digits that end it. Digits
    never need escaping, so rendering ``message_id_prefix + digits`` gives the encoded
    prefix, then the digits."""
    if version not in VERSIONS:
        raise ValueError(f"unsupported STOMP version {version!r}")
    return MessageHead(
        _subscription_line(version, subscription),
        _value(version, "message-id", message_id_prefix),
    )


def _subscription_line(version: str, subscription: str) -> bytes:
    return b"MESSAGE\nsubscription:%s\n" % _value(version, "subscription", subscription)


def _plain(value: str) -> bool:
    """Whether ``value`` is written as it is in every version (nothing to escape or drop)."""
    return not ("\\" in value or ":" in value or "\n" in value or "\r" in value or "\x00" in value)


def _value(version: str, name: str, value: str) -> bytes:
    """A per-session header value, escaped for ``version``; ``ValueError`` if it cannot be
    written at all."""
    if _plain(value):
        return value.encode()
    if not representable(version, name, value):
        raise ValueError(f"header {name!r}: {value!r} cannot be represented in STOMP {version}")
    return (value if version == "1.0" else escape(value)).encode()
