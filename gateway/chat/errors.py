"""`ChatError`: a client mistake on an /app destination, reported in a STOMP ERROR frame.
`StoreBehindError`: history that cannot be served yet without a gap; `StoreUnreachableError`:
history the store cannot give now. `RoomsError` and its
kinds: rooms API requests refused (an HTTP 4xx). `RemovedFromRoomError`: the ERROR that ends
the subscriptions of a user removed from a room."""

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


class StoreUnreachableError(ClientError):
    """History cannot be read now: the store itself failed in a way that passes (locked, an
    I/O error, the database down). Not the client's mistake: ask again shortly (HTTP: 503 with
    ``Retry-After``; STOMP: ERROR ``History not available``)."""

    reason = "store_unavailable"

    def __init__(self, why: str) -> None:
        self.text = "history not available now: the message store cannot be read; retry shortly"
        super().__init__(ErrorMessage.HISTORY_NOT_AVAILABLE, explain(self.text, why))


class RoomsError(ClientError):
    """A rooms API request that cannot be done; ``status`` is its HTTP status (a 4xx), and
    ``message`` the reason phrase."""

    reason = "rooms"
    status = 400


class RoomNotFoundClientError(RoomsError):
    reason = "room_not_found"
    status = 404

    def __init__(self, room: str) -> None:
        super().__init__(ErrorMessage.NO_SUCH_ROOM, f"there is no room '{room}'")


class NotAMemberError(RoomsError):
    reason = "not_a_member"
    status = 404

    def __init__(self, room: str, user: str) -> None:
        super().__init__(ErrorMessage.NOT_A_MEMBER, f"'{user}' is not a member of room '{room}'")


class NotAllowedError(RoomsError):
    reason = "room_forbidden"
    status = 403

    def __init__(self, room: str, what: str) -> None:
        super().__init__(
            ErrorMessage.NOT_ALLOWED,
            explain(
                f"not allowed to {what}",
                f"in room '{room}' only its owner or a user with the admin role may {what}"
                if what.endswith("members")
                else f"only the members of room '{room}' and admins may {what}",
            ),
        )


class RoomFullClientError(RoomsError):
    reason = "room_full"
    status = 409

    def __init__(self, room: str, limit: int, count: int) -> None:
        where = f"room '{room}'" if room else "the room"
        super().__init__(
            ErrorMessage.ROOM_IS_FULL,
            f"a group room has at most {limit} members; {where} would have {count}",
        )


class DirectRoomError(RoomsError):
    reason = "direct_room"

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorMessage.INVALID_DIRECT_ROOM, detail)


class RemovedFromRoomError(ClientError):
    """Ends a session subscribed to a room its user was just removed from."""

    reason = "membership_revoked"

    def __init__(self, room: str) -> None:
        super().__init__(
            ErrorMessage.REMOVED_FROM_ROOM,
            explain(
                f"removed from room {room}",
                f"you are no longer a member of room '{room}': your subscription to "
                f"/topic/room.{room} ended",
            ),
        )
