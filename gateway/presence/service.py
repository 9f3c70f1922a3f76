"""`PresenceService`: reading presence, invisible mode, and presence's ``/app`` destinations.

* ``SEND /app/presence/query`` (chat.presence_query.v1 with ``users``): the presence of up to
  100 users;
* ``SEND /app/rooms/<room>/presence`` (chat.presence_query.v1 without ``users``; the body may
  be empty): the presence of the room's members (at most ``ROOM_SNAPSHOT_MAX``; ``more: true``
  when the room has more). The ACL's rules for ``/app/rooms/<room>/...`` decide who may ask;
* ``SEND /app/presence/invisible`` (chat.presence_state.v1): appear offline, or not.

A query's answer is a chat.presence_snapshot.v1 (with the query's ``query_id``) sent to
``/user/<asker>/queue/presence``: every session of the asker that subscribed to
``/user/queue/presence`` gets it. Invisible users appear offline to everybody but themselves;
a user's own entry says whether they are invisible.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import orjson

from gateway.chat.destinations import is_valid_room
from gateway.chat.errors import ChatError
from gateway.errors import ErrorMessage
from gateway.presence.announcer import PresenceAnnouncer, Publish
from gateway.presence.events import SNAPSHOT_HEADERS, snapshot, snapshot_entries
from gateway.presence.membership import RoomsOfUser
from gateway.presence.store import PresenceStore
from schemas import SchemaError, decode
from schemas.models import PresenceQuery, PresenceState

__all__ = ["ROOM_SNAPSHOT_MAX", "PresenceError", "PresenceService", "user_queue"]

_T = TypeVar("_T", PresenceQuery, PresenceState)

ROOM_SNAPSHOT_MAX = 1000
"""Members one room snapshot lists at most (sorted by user id)."""

QUERY = "/app/presence/query"
INVISIBLE = "/app/presence/invisible"
_ROOM = re.compile(r"/app/rooms/(?P<room>[^/]+)/presence")


class PresenceError(ChatError):
    """A client's mistake on a presence destination or API: ``text`` says what is wrong (the
    HTTP API's ``error``); ``message`` is ``Invalid message``, or another
    :class:`~gateway.errors.ErrorMessage` for the case (`ChatError`'s convention)."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class PresenceService:
    def __init__(
        self,
        store: PresenceStore,
        rooms: RoomsOfUser,
        announcer: PresenceAnnouncer,
        publish: Publish,
        *,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._announcer = announcer
        self._publish = publish
        self._clock = clock

    # -- queries ---------------------------------------------------------------------------

    async def users_snapshot(
        self, asker: str, users: Sequence[str], *, query_id: str | None = None
    ) -> bytes:
        """chat.presence_snapshot.v1 of ``users`` (duplicates once, in the order given);
        `PresenceError` for too many users or a user id the schema refuses."""
        unique = list(dict.fromkeys(users))
        _decode(PresenceQuery, orjson.dumps({"users": unique}))  # the same rules as STOMP's
        found = await self._store.query(unique)
        return snapshot(snapshot_entries(found, asker), at=self._clock(), query_id=query_id)

    async def room_snapshot(self, asker: str, room: str, *, query_id: str | None = None) -> bytes:
        """chat.presence_snapshot.v1 of ``room``'s members (the caller checked the asker may
        read the room)."""
        members = sorted(await self._rooms.members(room))
        found = await self._store.query(members[:ROOM_SNAPSHOT_MAX])
        return snapshot(
            snapshot_entries(found, asker),
            at=self._clock(),
            room=room,
            query_id=query_id,
            more=len(members) > ROOM_SNAPSHOT_MAX,
        )

    async def own(self, user: str) -> bytes:
        """The user's own presence (true status, invisible or not)."""
        return await self.users_snapshot(user, [user])

    async def set_invisible(self, user: str, invisible: bool) -> None:
        """Appear offline (or not) from now on; the user's rooms hear of it like of any other
        change (at most one change per grace)."""
        changes = await self._store.set_invisible(user, invisible)
        if changes:
            await self._announcer.announce(changes)

    async def apply_state(self, user: str, body: bytes) -> None:
        """A chat.presence_state.v1 body from ``user``; `PresenceError` for a bad one."""
        state = _decode(PresenceState, body)
        await self.set_invisible(user, state.invisible)

    # -- /app destinations -----------------------------------------------------------------

    def handles(self, destination: str) -> bool:
        return destination in (QUERY, INVISIBLE) or (
            destination.endswith("/presence") and _ROOM.fullmatch(destination) is not None
        )

    async def handle_send(
        self, user: str, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        """One SEND of ``user`` to a presence destination; `PresenceError` for a mistake."""
        if destination == INVISIBLE:
            await self.apply_state(user, body)
            return
        query = _decode(PresenceQuery, body or b"{}")
        query_id = query.query_id if isinstance(query.query_id, str) else None
        if destination == QUERY:
            if not isinstance(query.users, list):
                raise PresenceError("invalid chat.presence_query: `users` is required here")
            answer = await self.users_snapshot(user, query.users, query_id=query_id)
        else:
            match = _ROOM.fullmatch(destination)
            assert match is not None  # handles() said so
            room = match["room"]
            if not is_valid_room(room):
                raise PresenceError(
                    f"invalid room id '{room}'", message=ErrorMessage.INVALID_DESTINATION
                )
            if isinstance(query.users, list):
                raise PresenceError(
                    "invalid chat.presence_query: `users` is not allowed here",
                    "a room's presence lists its members; ask /app/presence/query for others",
                )
            answer = await self.room_snapshot(user, room, query_id=query_id)
        await self._publish(user_queue(user), SNAPSHOT_HEADERS, answer)


def user_queue(user: str) -> str:
    """``/user/<user>/queue/presence``: every session of ``user`` subscribed to
    ``/user/queue/presence`` (a ``/`` in the user id is written ``%2F``, as the relay reads it)."""
    return f"/user/{user.replace('/', '%2F')}/queue/presence"


def _decode(model: type[_T], body: bytes) -> _T:
    try:
        return decode(model, body)
    except SchemaError as exc:
        raise PresenceError(str(exc), f"see schemas/{exc.schema}.json") from None
