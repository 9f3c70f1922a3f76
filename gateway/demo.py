"""The demo chat page and the two small endpoints it needs (README, "The demo chat").

The page is built from ``web/`` (TypeScript, Preact, @stomp/stompjs; ``make install`` runs
``npm run build``) into ``gateway/static/app/``, a generated folder that is never committed;
``gateway/static/`` itself holds the favicon.

=======  ===================  =================================================  ==========
method   path                 answer                                             auth mode
=======  ===================  =================================================  ==========
GET      /                    the page (``static/app/index.html``); 404 with     both
                              how to build it when it is not built
GET      /favicon.ico         the icon (SVG)                                     both
GET      /static/...          the favicon, the page's script and styles          both
GET      /api/config          gateway.config.v1: auth mode, WebSocket path,      both
                              the chat layer's limits, the demo users
POST     /api/demo/token      demo.token_request.v1 -> demo.token.v1             dev only
=======  ===================  =================================================  ==========

``POST /api/demo/token {"user": "alice"}`` hands out the credentials of a development login
(``--dev-users``): the CONNECT login and passcode and an HTTP Basic ``Authorization`` value.
It exists only in ``--auth dev``, which checks no tokens anyway; in ``jwt`` mode the route is
not there (404). A user who is not a development login gets a 403 (``not a demo user``).
"""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
from aiohttp import web

from gateway.auth.jwt_auth import DevAuthenticator
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.chat.rooms_api import refusal
from schemas import SchemaError, decode
from schemas.models import MAX_TEXT, DemoToken, DemoTokenRequest, GatewayConfig

STATIC_DIR = Path(__file__).parent / "static"
"""The favicon, and the built page in ``app/``."""

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stompgate: demo page not built</title>
<link rel="icon" type="image/svg+xml" href="/static/favicon.svg"></head>
<body><h1>The demo page is not built</h1>
<p>It is built from <code>web/</code> by <code>make install</code>
(or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) into
<code>gateway/static/app/</code>. The gateway itself runs: STOMP over WebSocket is at
<code>{ws_path}</code>.</p></body></html>
"""


class DemoSite:
    """The demo page's routes. ``auth`` decides the mode (and the development logins);
    ``ws_path`` and ``chat_max_body`` are the node's settings the page must know."""

    def __init__(
        self,
        *,
        auth: AuthSettings,
        ws_path: str,
        chat_max_body: int,
        static_dir: Path = STATIC_DIR,
    ) -> None:
        self._static = static_dir
        self._ws_path = ws_path
        self._dev = (
            DevAuthenticator.from_string(auth.dev_users) if auth.mode is AuthMode.DEV else None
        )
        config = GatewayConfig(
            v=1,
            auth="dev" if self._dev is not None else "jwt",
            ws_path=ws_path,
            chat_max_body=chat_max_body,
            chat_max_text=MAX_TEXT,
            demo_users=list(self._dev.logins) if self._dev is not None else msgspec.UNSET,
        )
        self._config = msgspec.json.encode(config)

    @property
    def index_file(self) -> Path:
        return self._static / "app" / "index.html"

    def routes(self) -> list[web.AbstractRouteDef]:
        """Routes to add to the gateway's aiohttp app."""
        routes: list[web.AbstractRouteDef] = [
            web.get("/", self._index),
            web.get("/favicon.ico", self._favicon),
            web.get("/api/config", self._config_answer),
            web.static("/static/", self._static),
        ]
        if self._dev is not None:
            routes.append(web.post("/api/demo/token", self._token))
        return routes

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        index = self.index_file
        if not index.is_file():
            return web.Response(
                status=404,
                text=NOT_BUILT.format(ws_path=self._ws_path),
                content_type="text/html",
            )
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def _favicon(self, _request: web.Request) -> web.FileResponse:
        """The SVG icon (browsers take one at /favicon.ico by its content type)."""
        return web.FileResponse(
            self._static / "favicon.svg", headers={"Content-Type": "image/svg+xml"}
        )

    async def _config_answer(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._config, content_type="application/json")

    async def _token(self, request: web.Request) -> web.Response:
        dev = self._dev
        assert dev is not None  # the route exists in development mode only
        try:
            body = decode(DemoTokenRequest, await request.read())
        except SchemaError as exc:
            return refusal(400, str(exc), f"{exc}; see schemas/{exc.schema}.json")
        passcode = dev.passcode(body.user)
        if passcode is None:
            logins = ", ".join(dev.logins)
            return refusal(
                403,
                "not a demo user",
                f"'{body.user[:64]}' is not a demo user; the demo users are {logins}",
            )
        basic = base64.b64encode(f"{body.user}:{passcode}".encode()).decode()
        answer = DemoToken(
            v=1,
            user=body.user,
            login=body.user,
            passcode=passcode,
            authorization=f"Basic {basic}",
        )
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")
