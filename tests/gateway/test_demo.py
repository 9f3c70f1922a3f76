"""The demo page's endpoints (gateway/demo.py): /api/config in both auth modes, the demo token
endpoint only in development mode (404 in jwt mode), the page itself or how to build it.

In-process, through aiohttp's test server: the routes of a whole (unstarted) `Gateway` for the
wiring, of a `DemoSite` alone for the rest. The browser test (tests/browser/) uses them for real.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import schemas
from gateway.app import Gateway
from gateway.auth.jwt_auth import JwtSettings
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.demo import DemoSite
from gateway.settings import Settings

DEV = AuthSettings(mode=AuthMode.DEV, dev_users="guest:guest,alice:secret:with:colons,bob:bob")
JWT = AuthSettings(mode=AuthMode.JWT, jwt=JwtSettings(algorithms=("HS256",), key="k" * 32))


async def client_for(app: web.Application) -> TestClient[web.Request, web.Application]:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def dev_client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app.add_routes(
        DemoSite(auth=DEV, ws_path="/ws", chat_max_body=2048, static_dir=tmp_path).routes()
    )
    client = await client_for(app)
    yield client
    await client.close()


async def json_of(response: Any) -> Any:
    return json.loads(await response.read())


async def test_config_in_dev_mode_names_the_limits_and_the_demo_users(
    dev_client: TestClient[web.Request, web.Application],
) -> None:
    response = await dev_client.get("/api/config")
    assert response.status == 200
    body = await response.read()
    schemas.validate("gateway.config.v1", body)
    assert json.loads(body) == {
        "v": 1,
        "auth": "dev",
        "ws_path": "/ws",
        "chat_max_body": 2048,
        "chat_max_text": 4000,
        "demo_users": ["guest", "alice", "bob"],
    }


async def test_the_token_of_a_demo_user_is_its_login(
    dev_client: TestClient[web.Request, web.Application],
) -> None:
    response = await dev_client.post("/api/demo/token", json={"user": "alice"})
    assert response.status == 200
    body = await response.read()
    schemas.validate("demo.token.v1", body)
    token = json.loads(body)
    assert (token["user"], token["login"], token["passcode"]) == (
        "alice",
        "alice",
        "secret:with:colons",
    )
    basic = base64.b64decode(token["authorization"].removeprefix("Basic ")).decode()
    assert basic == "alice:secret:with:colons"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"user": "mallory"}, 403, "not a demo user"),
        ({"user": ""}, 400, "invalid demo.token_request"),
        ({"user": "alice", "passcode": "x"}, 400, "invalid demo.token_request"),
        ({}, 400, "invalid demo.token_request"),
    ],
)
async def test_the_token_endpoint_refuses_what_is_not_a_demo_user(
    dev_client: TestClient[web.Request, web.Application],
    body: dict[str, str],
    status: int,
    error: str,
) -> None:
    response = await dev_client.post("/api/demo/token", json=body)
    assert response.status == status
    answer = await json_of(response)
    assert answer["error"].startswith(error)
    assert response.reason == answer["error"]
    if status == 403:
        assert (
            answer["detail"] == "'mallory' is not a demo user; the demo users are guest, alice, bob"
        )


async def test_the_page_is_served_once_built(
    dev_client: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    missing = await dev_client.get("/")
    assert missing.status == 404
    text = await missing.text()
    assert "make install" in text
    assert "npm run build" in text
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<!doctype html><title>built</title>")
    (tmp_path / "app" / "app.js").write_text("console.log('hi')")
    page = await dev_client.get("/")
    assert page.status == 200
    assert await page.text() == "<!doctype html><title>built</title>"
    assert page.headers["Cache-Control"] == "no-cache"
    script = await dev_client.get("/static/app/app.js")
    assert script.status == 200


async def test_jwt_mode_has_config_but_no_token_endpoint() -> None:
    app = web.Application()
    app.add_routes(DemoSite(auth=JWT, ws_path="/stomp", chat_max_body=16384).routes())
    client = await client_for(app)
    try:
        config = await json_of(await client.get("/api/config"))
        assert config == {
            "v": 1,
            "auth": "jwt",
            "ws_path": "/stomp",
            "chat_max_body": 16384,
            "chat_max_text": 4000,
        }
        token = await client.post("/api/demo/token", json={"user": "alice"})
        assert token.status == 404
    finally:
        await client.close()


@pytest.mark.parametrize("mode", ["dev", "jwt"])
async def test_a_gateway_node_wires_the_demo_site(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's own app: the token endpoint in dev mode only, the favicon, the config."""
    monkeypatch.setenv("STOMPGATE_JWT_ALGORITHMS", "HS256")
    monkeypatch.setenv("STOMPGATE_JWT_KEY", "k" * 32)
    gateway = Gateway(Settings(auth=mode, dev_users="alice:alice", chat_max_body=1000))
    client = await client_for(gateway.app)
    try:
        config = await json_of(await client.get("/api/config"))
        assert (config["auth"], config["chat_max_body"]) == (mode, 1000)
        token = await client.post("/api/demo/token", json={"user": "alice"})
        assert token.status == (200 if mode == "dev" else 404)
        favicon = await client.get("/favicon.ico")
        assert favicon.headers["Content-Type"].startswith("image/svg+xml")
    finally:
        await client.close()
        await gateway.access.close()
