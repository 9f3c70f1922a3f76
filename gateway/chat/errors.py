"""`ChatError`: a client mistake on an /app destination, reported in a STOMP ERROR frame."""

from __future__ import annotations


class ChatError(Exception):
    """``message`` goes in the ERROR frame's ``message`` header, ``detail`` in its body."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message
