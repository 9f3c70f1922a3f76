"""The HTTP answer to a store outage: ``503`` with ``Retry-After``, never a ``500``.

Every HTTP API of the gateway that reads or writes the store (history, rooms, push, profiles)
runs behind `store_outage_middleware`: one of `store.UNAVAILABLE_ERRORS` (SQLite locked past
its busy wait, an I/O error, the disk full; MongoDB unreachable: it passes) becomes
``503 Service Unavailable`` with
``{"error": "message store unavailable; retry shortly", "detail": ...}`` and
``Retry-After: RETRY_AFTER_S``. Other errors are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.chat.errors import RETRY_AFTER_S
from store import UNAVAILABLE_ERRORS

__all__ = ["STORE_UNAVAILABLE", "store_outage_middleware"]

log = logging.getLogger("stompgate.chat")

STORE_UNAVAILABLE = "message store unavailable; retry shortly"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def store_outage_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UNAVAILABLE_ERRORS as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return web.json_response(
            {"error": STORE_UNAVAILABLE, "detail": str(exc)},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
