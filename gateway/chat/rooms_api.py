"""HTTP rooms API (JSON; bodies and answers in ``schemas/``), authenticated like the history
API by the ``authenticate`` callable the gateway injects:

=======  ===============================  ==========================================  ======
method   path                             body -> answer                              status
=======  ===============================  ==========================================  ======
POST     /api/rooms                       rooms.create.v1 -> rooms.room.v1            201
GET      /api/rooms                       -> rooms.list.v1 (my rooms)                 200
POST     /api/rooms/direct                rooms.direct.v1 -> rooms.room.v1            200
GET      /api/rooms/{room}                -> rooms.room.v1                            200
GET      /api/rooms/{room}/members        -> rooms.members.v1                         200
POST     /api/rooms/{room}/members        rooms.members_add.v1 -> rooms.room.v1       200
DELETE   /api/rooms/{room}/members/{user} (owner or admin; or yourself)               204
POST     /api/rooms/{room}/leave                                                      204
GET      /api/unread                      -> chat.unread_snapshot.v1                  200
=======  ===============================  ==========================================  ======

Refusals are a 4xx whose reason phrase is the short message, with ``{"error": message,
"detail": explanation}``: 400 (a body or id that does not fit its schema; a one-to-one room
asked for members), 401 (no or bad credentials, with ``WWW-Authenticate``), 403 (not the
owner nor an admin; not a member), 404 (no such room; not a member, on removal), 409 (the
room would pass the group limit). The rules themselves are `gateway.chat.rooms`'.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from gateway.chat import events
from gateway.chat.destinations import is_valid_room
from gateway.chat.errors import RETRY_AFTER_S, RoomsError, StoreBehindError
from gateway.chat.rooms import Actor, RoomService, room_entry
from gateway.chat.store_api import Room
from schemas import SchemaError, decode
from schemas.models import RoomCreate, RoomDirect, RoomMembersAdd

Authenticate = Callable[[web.Request], Awaitable[Actor]]
"""request -> the caller; raises web.HTTPUnauthorized (with WWW-Authenticate)."""

Handler = Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]

_T = TypeVar("_T", RoomCreate, RoomDirect, RoomMembersAdd)


def refusal(
    status: int, message: str, detail: str = "", *, retry_after: int | None = None
) -> web.Response:
    """A 4xx/5xx whose reason phrase is ``message``, with the JSON error body (and a
    ``Retry-After`` header when ``retry_after`` is given)."""
    body = {"error": message, "detail": detail or message}
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return web.json_response(body, status=status, reason=message, headers=headers)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _room_body(room: Room, members: list[str]) -> dict[str, Any]:
    return {"v": 1, **room_entry(room), "members": members}


class _RoomsHandler:
    def __init__(self, rooms: RoomService, authenticate: Authenticate, clock: Callable[[], int]):
        self._rooms = rooms
        self._authenticate = authenticate
        self._clock = clock

    def route(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` with the caller authenticated and refusals turned into responses."""

        async def handle(request: web.Request) -> web.StreamResponse:
            actor = await self._authenticate(request)
            room = request.match_info.get("room")
            if room is not None and not is_valid_room(room):
                return refusal(400, "invalid room id", "1-64 characters from A-Z a-z 0-9 _ -")
            try:
                return await handler(request, actor)
            except RoomsError as exc:
                return refusal(exc.status, exc.message, exc.detail)
            except SchemaError as exc:
                return refusal(400, str(exc), f"{exc}; see schemas/{exc.schema}.json")
            except StoreBehindError as exc:
                return refusal(503, exc.message, exc.detail, retry_after=RETRY_AFTER_S)

        return handle

    async def create(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        body = await _body(request, RoomCreate)
        room, members = await self._rooms.create_group(actor, body)
        return _json(_room_body(room, members), status=201)

    async def direct(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        body = await _body(request, RoomDirect)
        room, members = await self._rooms.open_direct(actor, body.user)
        return _json(_room_body(room, members))

    async def mine(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        return _json({"v": 1, "rooms": await self._rooms.my_rooms(actor.user)})

    async def get(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        room, members = await self._rooms.room(actor, request.match_info["room"])
        return _json(_room_body(room, members))

    async def members(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        room = request.match_info["room"]
        members, pointers = await self._rooms.members(actor, room)
        listed = []
        for member in members:
            entry: dict[str, Any] = {
                "user": member.user,
                "role": member.role,
                "joined_at": member.joined_at,
            }
            if pointers is not None and member.user in pointers:
                entry["read_id"] = str(pointers[member.user])
            listed.append(entry)
        return _json({"v": 1, "room": room, "members": listed})

    async def add(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        room_id = request.match_info["room"]
        body = await _body(request, RoomMembersAdd)
        await self._rooms.add_members(actor, room_id, body.users)
        room, members = await self._rooms.room(actor, room_id)
        return _json(_room_body(room, members))

    async def remove(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        await self._rooms.remove_member(
            actor, request.match_info["room"], request.match_info["user"]
        )
        return web.Response(status=204)

    async def leave(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        await self._rooms.remove_member(actor, request.match_info["room"], actor.user)
        return web.Response(status=204)

    async def unread(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        counts = await self._rooms.unread_snapshot(actor.user)
        body = events.unread_snapshot_event(rooms=counts, at=self._clock())
        return web.Response(body=body, content_type="application/json")


async def _body(request: web.Request, model: type[_T]) -> _T:
    return decode(model, await request.read())


def rooms_routes(
    *, rooms: RoomService, authenticate: Authenticate, clock: Callable[[], int]
) -> list[web.RouteDef]:
    """Routes to add to the gateway's aiohttp app."""
    h = _RoomsHandler(rooms, authenticate, clock)
    return [
        web.post("/api/rooms", h.route(h.create)),
        web.get("/api/rooms", h.route(h.mine)),
        web.post("/api/rooms/direct", h.route(h.direct)),
        web.get("/api/rooms/{room}", h.route(h.get)),
        web.get("/api/rooms/{room}/members", h.route(h.members)),
        web.post("/api/rooms/{room}/members", h.route(h.add)),
        web.delete("/api/rooms/{room}/members/{user}", h.route(h.remove)),
        web.post("/api/rooms/{room}/leave", h.route(h.leave)),
        web.get("/api/unread", h.route(h.unread)),
    ]
