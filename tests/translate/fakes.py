"""Local fakes of DeepL, LibreTranslate and Papago: aiohttp servers that speak their HTTP.

Each fake checks credentials the way its service does, translates by tagging the text with the
target (`[es] Hello`), and records every request. A test scripts failures with
`fake.script(reply, ...)`: the next requests to the translate endpoint get those replies (429
with Retry-After, 456, 5xx, ...) before the fake goes back to translating; while `fake.down`
holds a reply, every translate request gets it (an outage). `max_in_flight` is
the most translate requests it ever had open at once; `hold` keeps each one open that long.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.gateway_proc import free_port

GOOD_KEY = "good-key"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: Mapping[str, str]
    body: Any
    at: float


Translate = Callable[["FakeService", web.Request, Any], Awaitable[web.Response]]


class FakeService:
    """One fake provider: `translate_path` gets the scripted and the translate behaviour,
    `extra` routes (language lists) always answer."""

    def __init__(
        self,
        translate_path: str,
        translate: Translate,
        extra: Mapping[str, Callable[[web.Request], Awaitable[web.Response]]] | None = None,
    ) -> None:
        self.translate_path = translate_path
        self._translate = translate
        self._extra = dict(extra or {})
        self.requests: list[Seen] = []
        self.hold = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripted: deque[Reply] = deque()
        self.down: Reply | None = None
        self._runner: web.AppRunner | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def translate_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path == self.translate_path]

    def script(self, *replies: Reply) -> None:
        self._scripted.extend(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(self.translate_path, self._on_translate)
        for path, handler in self._extra.items():
            app.router.add_get(path, self._recorded(handler))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _recorded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def record(request: web.Request) -> web.Response:
            self.requests.append(Seen(request.path, dict(request.headers), None, time.monotonic()))
            return await handler(request)

        return record

    async def _on_translate(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        self.requests.append(Seen(request.path, dict(request.headers), body, time.monotonic()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            if self.down is not None:
                return respond(self.down)
            if self._scripted:
                return respond(self._scripted.popleft())
            return await self._translate(self, request, body)
        finally:
            self.in_flight -= 1


def respond(reply: Reply) -> web.Response:
    body = reply.body if isinstance(reply.body, str) else orjson.dumps(reply.body).decode()
    return web.Response(
        status=reply.status, text=body, content_type="application/json", headers=reply.headers
    )


def tagged(text: str, target: str) -> str:
    return f"[{target}] {text}"


# --- DeepL -------------------------------------------------------------------------------


async def _deepl_translate(fake: FakeService, request: web.Request, body: Any) -> web.Response:
    if request.headers.get("Authorization") != f"DeepL-Auth-Key {GOOD_KEY}":
        return respond(Reply(403, {"message": "Authorization failure, check auth_key"}))
    target = body["target_lang"]
    if target in ("EN", "PT"):
        return respond(Reply(400, {"message": f"Value for 'target_lang' not supported: {target}"}))
    return respond(
        Reply(
            200,
            {
                "translations": [
                    {
                        "detected_source_language": body.get("source_lang", "EN"),
                        "text": tagged(t, target.lower()),
                    }
                    for t in body["text"]
                ]
            },
        )
    )


async def _deepl_languages(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"DeepL-Auth-Key {GOOD_KEY}":
        return respond(Reply(403, {"message": "Authorization failure, check auth_key"}))
    if request.query.get("type") == "target":
        codes = ["DE", "EN-GB", "EN-US", "ES", "ES-419", "FR", "PT-BR", "PT-PT"]
    else:
        codes = ["DE", "EN", "ES", "FR", "PT"]
    return respond(Reply(200, [{"language": c, "name": c} for c in codes]))


def deepl() -> FakeService:
    return FakeService("/v2/translate", _deepl_translate, {"/v2/languages": _deepl_languages})


# --- LibreTranslate ------------------------------------------------------------------------

LIBRE_LANGUAGES = ["en", "es", "fr", "de"]


async def _libre_translate(fake: FakeService, request: web.Request, body: Any) -> web.Response:
    if body.get("api_key") != GOOD_KEY:
        return respond(Reply(403, {"error": "Invalid API key"}))
    if body["target"] not in LIBRE_LANGUAGES or body["source"] not in LIBRE_LANGUAGES:
        return respond(Reply(400, {"error": f"{body['target']} is not supported"}))
    q = body["q"]
    out: Any = (
        tagged(q, body["target"]) if isinstance(q, str) else [tagged(t, body["target"]) for t in q]
    )
    return respond(Reply(200, {"translatedText": out}))


async def _libre_languages(request: web.Request) -> web.Response:
    return respond(
        Reply(
            200,
            [
                {"code": c, "name": c, "targets": [t for t in LIBRE_LANGUAGES if t != c]}
                for c in LIBRE_LANGUAGES
            ],
        )
    )


def libretranslate() -> FakeService:
    return FakeService("/translate", _libre_translate, {"/languages": _libre_languages})


# --- Papago --------------------------------------------------------------------------------


def papago_error(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": {"errorCode": code, "message": message}}, headers)


async def _papago_translate(fake: FakeService, request: web.Request, body: Any) -> web.Response:
    if (
        request.headers.get("X-NCP-APIGW-API-KEY-ID") != "client-id"
        or request.headers.get("X-NCP-APIGW-API-KEY") != GOOD_KEY
    ):
        return respond(papago_error(401, "200", "Authentication Failed"))
    result = {
        "srcLangType": body["source"],
        "tarLangType": body["target"],
        "translatedText": tagged(body["text"], body["target"]),
    }
    return respond(Reply(200, {"message": {"@type": "response", "result": result}}))


def papago() -> FakeService:
    return FakeService("/nmt/v1/translation", _papago_translate)
