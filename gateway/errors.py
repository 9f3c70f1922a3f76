"""The one root of every error a client can see.

A :class:`ClientError` becomes one STOMP ERROR frame (or an HTTP 4xx): ``message`` is the
short text for the frame's ``message`` header, ``detail`` the explanation for its body, and
``reason`` a stable label for the ``stompgate_errors_total{reason}`` metric and the logs,
like h11's ``ProtocolError`` with its status hint. The session adapter catches this class,
and only this class, to report a client's mistake; anything else is a bug.

This module imports nothing of the project: every layer may raise these.
"""

from __future__ import annotations

__all__ = ["ClientError"]


class ClientError(Exception):
    """Something the client asked for cannot be done; the client is told why.

    Subclasses set a class-level ``reason``; a raise site may pass a more precise one.
    ``str(exc)`` is ``message``.
    """

    reason: str = "error"

    def __init__(self, message: str, detail: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if reason is not None:
            self.reason = reason
