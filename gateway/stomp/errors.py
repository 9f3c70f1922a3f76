"""Remote protocol errors: what the peer did wrong, and the ERROR frame that says so.

A :class:`ProtocolError` is a value, not an exception: the parser returns it and the
session turns it into an ERROR frame. Local mistakes (calling the API wrongly) raise
exceptions; those are bugs: :class:`InvalidState` (a ``RuntimeError``) for a session call
its state does not allow, ``ValueError`` for bad arguments.

ERROR frames are written as RabbitMQ's STOMP plugin writes them, so that its clients parse
ours: a short, stable ``message`` header (:class:`ProtocolMessage` lists every one the core
sends itself, RabbitMQ's own text wherever the plugin has the case), the explanation in a
``text/plain`` body. Neither can end the frame early: the ``message`` header is one line with
no NUL, and a NUL in the body is written as ``\\x00`` (a client that ignores
``content-length`` must not see a second frame in it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .frames import Frame

__all__ = ["InvalidState", "ProtocolError", "ProtocolMessage", "quote"]


class ProtocolMessage(enum.StrEnum):
    """The ``message`` header of every ERROR frame the protocol core sends on its own.

    The texts are a contract (docs/client-contract.md lists them with the rest of the node's):
    clients match on them, so they never carry variable parts; what varies goes in the body.
    """

    ILLEGAL_COMMAND = "Illegal command"  # a frame before CONNECT (RabbitMQ's text)
    BAD_COMMAND = "Bad command"  # unknown command, server frame, CONNECT again (RabbitMQ's)
    VERSION_MISMATCH = "Version mismatch"  # no common version (RabbitMQ's)
    MISSING_DESTINATION = "Missing destination"  # SEND/SUBSCRIBE without one (RabbitMQ's)
    MISSING_HEADER = "Missing Header"  # SUBSCRIBE without id (RabbitMQ's, durable case)
    MISSING_ACK_HEADER = "Missing header"  # ACK/NACK without id/message-id (RabbitMQ's)
    MISSING_TRANSACTION = "Missing transaction"  # BEGIN/COMMIT/ABORT without (RabbitMQ's)
    MISSING_DESTINATION_OR_ID = "Missing destination or id"  # UNSUBSCRIBE (RabbitMQ's)
    NO_SUBSCRIPTION = "No subscription found"  # UNSUBSCRIBE of an unknown id (RabbitMQ's)
    DUPLICATED_SUBSCRIPTION = "Duplicated subscription identifier"  # (RabbitMQ's)
    BAD_TRANSACTION = "Bad transaction"  # unknown, or begun twice (RabbitMQ's)
    TRANSACTION_LIMIT = "Transaction limit exceeded"  # too many open (RabbitMQ's)
    TRANSACTION_TOO_LARGE = "Transaction too large"  # too many frames in one (RabbitMQ's)
    INVALID_HEADER = "Invalid header"  # a value the header cannot have (RabbitMQ's)
    INVALID_FRAME = "Invalid frame"  # a frame that cannot be parsed
    FRAME_TOO_LARGE = "Frame too large"  # frame size, header line or header count limit
    TOO_MUCH_DATA = "Too much data"  # unparsed input beyond what the session holds
    TOO_MANY_SUBSCRIPTIONS = "Too many subscriptions"  # max_subscriptions


def quote(text: str, limit: int = 60) -> str:
    """A short, single-line, printable rendering of peer data for error messages."""
    shown = repr(text[:limit])
    return shown + "..." if len(text) > limit else shown


class InvalidState(RuntimeError):  # noqa: N818 -- the name issue 12 asks for
    """The adapter called a session method in a state that does not allow it (a bug).

    For example ``accept()`` when no CONNECT is pending, or ``receipt()`` before a version
    was agreed. A ``RuntimeError``, so code that catches that keeps working.
    """


def _one_line(text: str) -> str:
    """``text`` as a header value no peer can read as more than one line, in any version."""
    return text.replace("\r", " ").replace("\n", " ").replace("\x00", " ")


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A violation by the remote peer.

    ``message`` is short and goes in the ERROR frame's ``message`` header; ``detail`` is
    the human-readable ERROR body. ``headers`` are extra ERROR headers (for example
    ``version`` when negotiation fails).
    """

    message: str
    detail: str = ""
    receipt_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def frame(self, extra: tuple[tuple[str, str], ...] = ()) -> Frame:
        """The ERROR frame to send to the peer before closing the connection; ``extra``
        headers go after this error's own (the session's ``violation_headers``)."""
        headers: list[tuple[str, str]] = [("message", _one_line(self.message))]
        if self.receipt_id is not None:
            headers.append(("receipt-id", self.receipt_id))
        headers.extend(self.headers)
        headers.extend(extra)
        body = self.detail.replace("\x00", "\\x00").encode("utf-8", "replace")
        if body:
            headers.append(("content-type", "text/plain"))
            headers.append(("content-length", str(len(body))))
        return Frame("ERROR", tuple(headers), body)
