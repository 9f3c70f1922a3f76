"""`ChatError`: a client mistake on an /app destination, reported in a STOMP ERROR frame.
`StoreBehindError`: history that cannot be served yet without a gap."""

from __future__ import annotations

from collections.abc import Sequence


class ChatError(Exception):
    """``message`` goes in the ERROR frame's ``message`` header, ``detail`` in its body."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message


RETRY_AFTER_S = 5
"""What the history API's ``Retry-After`` header says while the store is behind."""


class StoreBehindError(Exception):
    """History cannot be served without a gap: the store has not caught up with the cache.

    Not the client's mistake: ask again shortly.
    """

    def __init__(self, room: str, missing: Sequence[int]) -> None:
        self.room = room
        self.missing = tuple(missing)
        self.message = "history not available yet: the message store is behind; retry shortly"
        self.detail = (
            f"{len(self.missing)} message(s) of room '{room}' left the recent cache before the "
            f"store had them (first id {self.missing[0] if self.missing else '-'})"
        )
        super().__init__(self.message)
