"""HTTP profile API (JSON; bodies and answers in ``schemas/``), authenticated like the history
API by the ``identify`` callable the gateway injects:

=======  ================  =================================================  ======
method   path              body -> answer                                     status
=======  ================  =================================================  ======
GET      /api/me/profile   -> users.profile.v1                                200
PUT      /api/me/profile   users.profile_update.v1 -> users.profile.v1        200
=======  ================  =================================================  ======

``PUT`` replaces what the caller chose: ``{"lang": "es"}`` sets it, ``{}`` clears it (the
token's language, if it claims one, applies again). Every call also records the language the
caller's token claims (`gateway.chat.profiles`), so the answer shows it. A body that does not
fit its schema is a 400 with ``{"error", "detail"}``; no or bad credentials a 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.auth.identity import Identity
from gateway.chat.profiles import ProfileService, profile_body
from gateway.chat.rooms_api import refusal
from gateway.chat.store_api import Profile
from schemas import SchemaError, decode
from schemas.models import ProfileUpdate

Identify = Callable[[web.Request], Awaitable[Identity]]
"""request -> who makes it; raises web.HTTPUnauthorized (with WWW-Authenticate)."""

PATH = "/api/me/profile"


class _ProfileHandler:
    def __init__(self, profiles: ProfileService, identify: Identify) -> None:
        self._profiles = profiles
        self._identify = identify

    async def get(self, request: web.Request) -> web.StreamResponse:
        identity = await self._identify(request)
        await self._profiles.record_claim(identity)
        return _answer(await self._profiles.profile(identity.user))

    async def put(self, request: web.Request) -> web.StreamResponse:
        identity = await self._identify(request)
        try:
            body = decode(ProfileUpdate, await request.read())
        except SchemaError as exc:
            return refusal(400, str(exc), f"{exc}; see schemas/{exc.schema}.json")
        await self._profiles.record_claim(identity)
        lang = body.lang if isinstance(body.lang, str) else ""
        return _answer(await self._profiles.set_lang(identity.user, lang))


def _answer(profile: Profile) -> web.Response:
    return web.Response(body=orjson.dumps(profile_body(profile)), content_type="application/json")


def profile_routes(*, profiles: ProfileService, identify: Identify) -> list[web.RouteDef]:
    """Routes to add to the gateway's aiohttp app."""
    handler = _ProfileHandler(profiles, identify)
    return [web.get(PATH, handler.get), web.put(PATH, handler.put)]
