"""Remote protocol errors: what the peer did wrong, and the ERROR frame that says so.

A :class:`ProtocolError` is a value, not an exception: the parser returns it and the
session turns it into an ERROR frame. Local mistakes (calling the API wrongly) raise
exceptions; those are bugs: :class:`InvalidState` (a ``RuntimeError``) for a session call
its state does not allow, ``ValueError`` for bad arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .frames import Frame

__all__ = ["InvalidState", "ProtocolError", "quote"]


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
    return text.replace("\r", " ").replace("\n", " ")


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

    def frame(self) -> Frame:
        """The ERROR frame to send to the peer before closing the connection."""
        headers: list[tuple[str, str]] = [("message", _one_line(self.message))]
        if self.receipt_id is not None:
            headers.append(("receipt-id", self.receipt_id))
        headers.extend(self.headers)
        body = self.detail.encode("utf-8")
        if body:
            headers.append(("content-type", "text/plain;charset=utf-8"))
            headers.append(("content-length", str(len(body))))
        return Frame("ERROR", tuple(headers), body)
