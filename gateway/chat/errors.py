"""`ChatError`: a client mistake on an /app destination, reported in a STOMP ERROR frame.
`StoreBehindError`: history that cannot be served yet without a gap."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import ClientError, ErrorMessage, explain


class ChatError(ClientError):
    """A post or header the chat layer refuses. ``text`` says what is wrong, ``why`` more
    (both go in the ERROR body); ``message`` is ``Invalid message``, or another
    :class:`~gateway.errors.ErrorMessage` for the case (``Invalid destination``, ...)."""

    reason = "invalid"

    def __init__(
        self, text: str, why: str = "", *, message: ErrorMessage = ErrorMessage.INVALID_MESSAGE
    ) -> None:
        super().__init__(message, explain(text, why))
        self.text = text


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
        self.text = "history not available yet: the message store is behind; retry shortly"
        super().__init__(
            ErrorMessage.HISTORY_NOT_AVAILABLE,
            explain(
                self.text,
                f"{len(self.missing)} message(s) of room '{room}' left the recent cache before "
                f"the store had them (first id {self.missing[0] if self.missing else '-'})",
            ),
        )
