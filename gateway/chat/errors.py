"""`ChatError`: a client mistake on an /app destination, reported in a STOMP ERROR frame.
`StoreBehindError`: history that cannot be served yet without a gap."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import ClientError


class ChatError(ClientError):
    """``message`` goes in the ERROR frame's ``message`` header, ``detail`` in its body."""

    reason = "invalid"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message, detail or message)


RETRY_AFTER_S = 5
"""What the history API's ``Retry-After`` header says while the store is behind."""


class StoreBehindError(ClientError):
    """History cannot be served without a gap: the store has not caught up with the cache.

    Not the client's mistake: ask again shortly.
    """

    reason = "store_behind"

    def __init__(self, room: str, missing: Sequence[int]) -> None:
        self.room = room
        self.missing = tuple(missing)
        super().__init__(
            "history not available yet: the message store is behind; retry shortly",
            f"{len(self.missing)} message(s) of room '{room}' left the recent cache before the "
            f"store had them (first id {self.missing[0] if self.missing else '-'})",
        )
