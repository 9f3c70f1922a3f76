"""HTTP history: ``GET /api/rooms/{room}/messages?before=&after=&limit=``.

Response (``application/json``)::

    {"room": "general", "messages": [<chat.message.v1>, ...],
     "next_before": "<id>" | null, "next_after": "<id>" | null,
     "read_pointers": {"<user>": "<id>", ...},
     "translations": [<chat.translation.v1>, ...]}

``translations`` (with a store) holds the stored translations of the page's messages, by
message id, then language: what the translation worker published for them so far.

``read_pointers`` ("seen by") is there for a room of the rooms API with at most
``--seen-by-max-members`` members: each member's read pointer (members who read nothing yet
are left out), so a client shows who has read up to which message; live, the room's
``receipt`` events move them.

``messages`` are always in ascending id order. With ``after=X``: the oldest ``limit``
messages above X; ``next_after`` is the last id when the page is full (more may follow). With
``before=X`` or neither: the newest ``limit`` messages below X (or overall); ``next_before`` is
the first id when the page is full. Ids are decimal strings, as everywhere on the wire.

Recent pages come from the Redis cache when it covers the request, the store otherwise. A
page that would have a gap because the store has not caught up yet (the persist worker lags
by more than the cache holds; see `gateway.chat.unstored`) is refused with ``503``,
``{"error": "..."}`` and a ``Retry-After`` header, never served partially; so is a read
the store cannot do now (locked, an I/O error, the database down).
Authentication and room access are delegated to the ``authorize`` callable the app injects.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

import orjson
from aiohttp import web

from gateway.chat.destinations import is_valid_room
from gateway.chat.errors import RETRY_AFTER_S, StoreBehindError, StoreUnreachableError
from gateway.chat.history import HistoryEntry, HistoryReader
from gateway.chat.layer import ChatLayer
from gateway.chat.snowflake import MAX_ID
from gateway.chat.store_api import MessageReader, TranslationStore

Authorize = Callable[[web.Request, str], Awaitable[str]]
"""(request, room) -> user; raises web.HTTPUnauthorized / web.HTTPForbidden."""

SeenBy = Callable[[str], Awaitable[dict[str, int] | None]]
"""room -> its members' read pointers, or None (not a rooms API room, or too big)."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_DIGITS = re.compile(r"[0-9]{1,19}")


class BadParameterError(ValueError):
    pass


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


def _message_id(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_ID:
        raise BadParameterError(f"`{name}` must be a message id (decimal digits)")
    return int(raw)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadParameterError(f"`limit` must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _render(
    room: str,
    entries: list[HistoryEntry],
    *,
    forward: bool,
    full: bool,
    seen_by: dict[str, int] | None = None,
    translations: Sequence[bytes] | None = None,
) -> bytes:
    next_before = next_after = None
    if entries and full:
        if forward:
            next_after = str(entries[-1].id)
        else:
            next_before = str(entries[0].id)
    return b"".join(
        (
            b'{"room":',
            orjson.dumps(room),
            b',"messages":[',
            b",".join(entry.event for entry in entries),
            b'],"next_before":',
            orjson.dumps(next_before),
            b',"next_after":',
            orjson.dumps(next_after),
            b""
            if seen_by is None
            else b',"read_pointers":' + orjson.dumps({u: str(p) for u, p in seen_by.items()}),
            b"" if translations is None else b',"translations":[' + b",".join(translations) + b"]",
            b"}",
        )
    )


class _HistoryHandler:
    def __init__(
        self,
        history: HistoryReader,
        authorize: Authorize,
        seen_by: SeenBy | None = None,
        translations: TranslationStore | None = None,
    ) -> None:
        self._history = history
        self._authorize = authorize
        self._seen_by = seen_by
        self._translations = translations

    async def get(self, request: web.Request) -> web.StreamResponse:
        room = request.match_info["room"]
        if not is_valid_room(room):
            return _bad_request("invalid room id: 1-64 characters from A-Z a-z 0-9 _ -")
        await self._authorize(request, room)
        query = request.query
        try:
            before = _message_id("before", query.get("before"))
            after = _message_id("after", query.get("after"))
            limit = _limit(query.get("limit"))
        except BadParameterError as exc:
            return _bad_request(str(exc))
        if before is not None and after is not None:
            return _bad_request("give `before` or `after`, not both")
        try:
            if after is not None:
                entries = await self._history.after(room, after, limit)
            else:
                entries = await self._history.before(room, before, limit)
        except (StoreBehindError, StoreUnreachableError) as exc:
            return web.json_response(
                {"error": exc.text},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        seen_by = None if self._seen_by is None else await self._seen_by(room)
        translations = None
        if self._translations is not None:
            found = await self._translations.of_messages([entry.id for entry in entries])
            translations = [t.event for t in found]
        body = _render(
            room,
            entries,
            forward=after is not None,
            full=len(entries) >= limit,
            seen_by=seen_by,
            translations=translations,
        )
        return web.Response(body=body, content_type="application/json")


def history_routes(
    *,
    reader: MessageReader | None,
    chat: ChatLayer,
    authorize: Authorize,
    seen_by: SeenBy | None = None,
    translations: TranslationStore | None = None,
) -> list[web.RouteDef]:
    """Routes to add to the gateway's aiohttp app (``app.add_routes(history_routes(...))``)."""
    handler = _HistoryHandler(
        HistoryReader(chat.recent, reader, chat.unstored), authorize, seen_by, translations
    )
    return [web.get("/api/rooms/{room}/messages", handler.get)]
