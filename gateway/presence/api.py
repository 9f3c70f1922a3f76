"""HTTP presence API (every answer a chat.presence_snapshot.v1, ``application/json``):

* ``GET /api/presence?users=a,b``: the presence of up to 100 users (``users`` comma separated,
  and/or repeated), for any authenticated user;
* ``GET /api/rooms/{room}/presence``: the room's members, for a user who may read the room;
* ``GET /api/me/presence``: the asker's own true presence and whether they are invisible;
* ``PUT /api/me/presence`` with chat.presence_state.v1 (``{"invisible": true}``): appear offline
  to everybody else (or not); answers like ``GET``.

Authentication (and the room check) are the callables the app injects: 401/403 from them,
400 with ``{"error": ...}`` for a bad parameter or body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.chat.destinations import is_valid_room
from gateway.presence.service import PresenceError, PresenceService

__all__ = ["Authenticate", "AuthorizeRoom", "presence_routes"]

Authenticate = Callable[[web.Request], Awaitable[str]]
"""request -> user; raises web.HTTPUnauthorized."""
AuthorizeRoom = Callable[[web.Request, str], Awaitable[str]]
"""(request, room) -> user; raises web.HTTPUnauthorized / web.HTTPForbidden."""

MAX_BODY = 1024


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


class _PresenceHandler:
    def __init__(
        self, service: PresenceService, authenticate: Authenticate, authorize_room: AuthorizeRoom
    ) -> None:
        self._service = service
        self._authenticate = authenticate
        self._authorize_room = authorize_room

    async def users(self, request: web.Request) -> web.Response:
        asker = await self._authenticate(request)
        users = [u for raw in request.query.getall("users", []) for u in raw.split(",") if u]
        if not users:
            return _bad_request("give `users`: user ids, comma separated")
        try:
            return _json(await self._service.users_snapshot(asker, users))
        except PresenceError as exc:
            return _bad_request(exc.text)

    async def room(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        if not is_valid_room(room):
            return _bad_request("invalid room id: 1-64 characters from A-Z a-z 0-9 _ -")
        asker = await self._authorize_room(request, room)
        return _json(await self._service.room_snapshot(asker, room))

    async def me(self, request: web.Request) -> web.Response:
        user = await self._authenticate(request)
        return _json(await self._service.own(user))

    async def set_me(self, request: web.Request) -> web.Response:
        user = await self._authenticate(request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _bad_request(f"body too large: at most {MAX_BODY} bytes")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _bad_request(f"body too large: at most {MAX_BODY} bytes")
        try:
            await self._service.apply_state(user, body)
        except PresenceError as exc:
            return _bad_request(exc.text)
        return _json(await self._service.own(user))


def presence_routes(
    service: PresenceService, *, authenticate: Authenticate, authorize_room: AuthorizeRoom
) -> list[web.RouteDef]:
    """Routes to add to the gateway's aiohttp app."""
    handler = _PresenceHandler(service, authenticate, authorize_room)
    return [
        web.get("/api/presence", handler.users),
        web.get("/api/rooms/{room}/presence", handler.room),
        web.get("/api/me/presence", handler.me),
        web.put("/api/me/presence", handler.set_me),
    ]
