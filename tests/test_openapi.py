"""docs/openapi.yaml stays true to the running API.

(a) The routes a running node registers (method and path) are exactly the file's operations.
(b) A real node (RabbitMQ vhost and Redis prefix of the run, an SQLite store, development
    logins) is driven through every operation at least once with a success, and through every
    operation that needs credentials without them; each answer's status must be one the file
    lists for that operation, its required headers (``WWW-Authenticate`` on every 401) must be
    there and match, and a JSON body must validate against the operation's schema (the file's
    own, or the one in schemas/ it refers to).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import jwt
import pytest
import redis.asyncio
import yaml
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.access import build_access
from gateway.app import Gateway
from gateway.settings import Settings
from tests.support.gateway_proc import DEV_USERS, free_port

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
SPEC_URI = SPEC_PATH.as_uri()
METHODS = ("get", "put", "post", "delete", "patch")


def basic(login: str, passcode: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{passcode}".encode()).decode()


ALICE = basic("alice", "alice")
BOB = basic("bob", "bob")


def _registry() -> Registry[Any]:
    resources = [(SPEC_URI, DRAFT202012.create_resource(SPEC))]
    for path in sorted((ROOT / "schemas").glob("*.json")):
        schema = Resource.from_contents(json.loads(path.read_text()))
        resources.append((path.as_uri(), schema))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def deref(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow the file's own ``$ref``s (``#/components/...``): the node and its pointer."""
    while "$ref" in node and str(node["$ref"]).startswith("#/"):
        pointer = node["$ref"][1:]
        node = SPEC
        for part in pointer.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def validate(instance: Any, pointer: str) -> None:
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"}, registry=REGISTRY
    )
    validator.validate(instance)


def spec_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }


def secured(method: str, path: str) -> bool:
    operation = SPEC["paths"][path][method.lower()]
    return bool(operation.get("security", SPEC["security"]))


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds one to every GET
            continue
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{path}"
        found.add((route.method, path))
    return found


@dataclass
class Api:
    """Calls the node and checks each answer against the file."""

    http: aiohttp.ClientSession
    base: str
    answered: set[tuple[str, str, int]] = field(default_factory=set)

    async def call(
        self,
        method: str,
        template: str,
        expect: int,
        *,
        auth: str | None = ALICE,
        params: dict[str, str] | None = None,
        body: Any = None,
        **path_params: str,
    ) -> Any:
        url = self.base + template.format(**path_params)
        headers = {} if auth is None else {"Authorization": auth}
        async with self.http.request(
            method, url, headers=headers, params=params, json=body, allow_redirects=False
        ) as response:
            raw = await response.read()
            status = response.status
            assert status == expect, f"{method} {url}: {status} {raw[:300]!r}"
            self.check(method, template, response, raw)
        return json.loads(raw) if response.content_type == "application/json" else raw

    def check(
        self, method: str, template: str, response: aiohttp.ClientResponse, raw: bytes
    ) -> None:
        operation = SPEC["paths"][template][method.lower()]
        status = str(response.status)
        assert status in operation["responses"], (
            f"{method} {template} answered {status}, which docs/openapi.yaml does not list"
        )
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{status}"
        documented, pointer = deref(operation["responses"][status], pointer)
        for name, header in documented.get("headers", {}).items():
            header, header_pointer = deref(header, f"{pointer}/headers/{_escape(name)}")
            if header.get("required"):
                assert name in response.headers, f"{method} {template} {status}: no {name}"
                validate(response.headers[name], f"{header_pointer}/schema")
        content = documented.get("content")
        if content is None:
            assert raw == b"" or response.status == 200, f"{method} {template}: {raw[:200]!r}"
        else:
            assert response.content_type in content, (
                f"{method} {template} {status}: {response.content_type} not documented"
            )
            if response.content_type == "application/json":
                schema = f"{pointer}/content/{_escape('application/json')}/schema"
                validate(json.loads(raw), schema)
        self.answered.add((method, template, response.status))


@pytest.fixture
async def node(
    amqp_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        stomp_host="127.0.0.1",
        stomp_port=free_port(),
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        store=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        auth="dev",
        dev_users=DEV_USERS,
        node_id="gw-openapi",
        heartbeat_send_ms=0,
        heartbeat_receive_ms=0,
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
        client = redis.asyncio.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def test_the_file_is_openapi_3_1_with_unique_operation_ids() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    ids = [SPEC["paths"][path][method.lower()]["operationId"] for method, path in spec_operations()]
    assert len(ids) == len(set(ids))


async def test_the_running_app_registers_exactly_the_documented_routes(node: Gateway) -> None:
    assert app_operations(node.app) == spec_operations()


class Stomp:
    """Just enough STOMP over TCP to make what the API lists: chat posts, a durable
    subscription."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, login: str) -> Stomp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.request("CONNECT", "accept-version:1.2", f"login:{login}", f"passcode:{login}")
        return client

    async def request(self, command: str, *headers: str, body: str = "") -> bytes:
        """Send a frame (with a receipt, but CONNECT) and return the answer."""
        receipt = () if command == "CONNECT" else (f"receipt:{uuid.uuid4().hex}",)
        frame = "\n".join((command, *headers, *receipt)) + "\n\n" + body + "\x00"
        self.writer.write(frame.encode())
        answer = await asyncio.wait_for(self.reader.readuntil(b"\x00"), 10)
        answer = answer.lstrip(b"\r\n")
        assert answer.startswith((b"CONNECTED", b"RECEIPT")), answer
        return answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_every_operation_answers_as_documented(node: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(http, f"http://127.0.0.1:{node.http_port}")
        await drive(api, node)
    successes = {(m, p) for m, p, status in api.answered if 200 <= status < 300}
    assert successes | {("GET", "/ws")} == spec_operations()
    unauthorized = {(m, p) for m, p, status in api.answered if status == 401}
    assert unauthorized == {(m, p) for m, p in spec_operations() if secured(m, p)}


async def drive(api: Api, node: Gateway) -> None:
    call = api.call
    # -- operations, demo ------------------------------------------------------------------
    await call("GET", "/healthz", 200, auth=None)
    await call("GET", "/readyz", 200, auth=None)
    await call("GET", "/metrics", 200, auth=None)
    built = (Path(__file__).parent.parent / "gateway/static/app/index.html").is_file()
    await call("GET", "/", 200 if built else 404, auth=None)
    await call("GET", "/favicon.ico", 200, auth=None)
    await call("GET", "/static/{path}", 200, auth=None, path="favicon.svg")
    await call("GET", "/static/{path}", 404, auth=None, path="nothing-here.js")
    await call("GET", "/api/config", 200, auth=None)
    token = await call("POST", "/api/demo/token", 200, auth=None, body={"user": "alice"})
    assert token["authorization"] == ALICE
    await call("POST", "/api/demo/token", 403, auth=None, body={"user": "mallory"})
    await call("POST", "/api/demo/token", 400, auth=None, body={"who": "alice"})
    await call("GET", "/ws", 400, auth=None)  # not an upgrade
    async with api.http.ws_connect(
        f"{api.base}{node.settings.ws_path}", protocols=("v12.stomp",)
    ) as ws:
        assert ws.protocol == "v12.stomp"

    # -- rooms -----------------------------------------------------------------------------
    room = (await call("POST", "/api/rooms", 201, body={"name": "openapi", "members": ["bob"]}))[
        "id"
    ]
    await call("POST", "/api/rooms", 400, body={"members": ["bob"]})
    await call("GET", "/api/rooms", 200)
    direct = await call("POST", "/api/rooms/direct", 200, body={"user": "bob"})
    await call("GET", "/api/rooms/{room}", 200, room=room)
    await call("GET", "/api/rooms/{room}", 404, room="no-such-room")
    await call("GET", "/api/rooms/{room}/members", 200, room=room)
    await call("POST", "/api/rooms/{room}/members", 200, body={"users": ["guest"]}, room=room)
    await call("POST", "/api/rooms/{room}/members", 403, body={"users": ["x"]}, auth=BOB, room=room)
    await call("DELETE", "/api/rooms/{room}/members/{user}", 204, room=room, user="guest")
    await call("POST", "/api/rooms/{room}/leave", 204, room=direct["id"], auth=BOB)

    # -- history (with posts, so that pages are full) ---------------------------------------
    alice = await Stomp.connect(node.stomp_port, "alice")
    for n in range(3):
        post = json.dumps({"client_id": uuid.uuid4().hex, "text": f"post {n}"})
        await alice.request("SEND", f"destination:/app/rooms/{room}/messages", body=post)
    history = "/api/rooms/{room}/messages"
    page = await call("GET", history, 200, room=room)
    assert [m["text"] for m in page["messages"]] == ["post 0", "post 1", "post 2"]
    newest = await call("GET", history, 200, params={"limit": "1"}, room=room)
    assert newest["next_before"] == newest["messages"][0]["id"]
    older = await call(
        "GET", history, 200, params={"limit": "2", "before": newest["next_before"]}, room=room
    )
    assert [m["text"] for m in older["messages"]] == ["post 0", "post 1"]
    newer = await call(
        "GET", history, 200, params={"limit": "1", "after": older["messages"][0]["id"]}, room=room
    )
    assert [m["text"] for m in newer["messages"]] == ["post 1"]
    assert newer["next_after"] == newer["messages"][0]["id"]
    for bad in ({"limit": "0"}, {"limit": "201"}, {"before": "x"}, {"before": "1", "after": "2"}):
        await call("GET", history, 400, params=bad, room=room)
    await call("GET", "/api/unread", 200, auth=BOB)

    # -- presence, profiles ------------------------------------------------------------------
    await call("GET", "/api/presence", 200, params={"users": "alice,bob"})
    await call("GET", "/api/presence", 400)
    await call("GET", "/api/rooms/{room}/presence", 200, room=room)
    await call("GET", "/api/me/presence", 200)
    await call("PUT", "/api/me/presence", 200, body={"invisible": True})
    await call("PUT", "/api/me/presence", 400, body={"invisible": "yes"})
    await call("GET", "/api/me/profile", 200)
    await call("PUT", "/api/me/profile", 200, body={"lang": "es"})
    await call("PUT", "/api/me/profile", 400, body={"lang": 7})

    # -- push ------------------------------------------------------------------------------
    target = {"kind": "fcm", "token": "openapi-token"}
    made = await call("POST", "/api/me/push-subscriptions", 201, body=target)
    await call("POST", "/api/me/push-subscriptions", 200, body=target)
    await call("POST", "/api/me/push-subscriptions", 400, body={"kind": "carrier-pigeon"})
    await call("GET", "/api/me/push-subscriptions", 200)
    await call("DELETE", "/api/me/push-subscriptions/{id}", 204, id=made["id"])
    await call("DELETE", "/api/me/push-subscriptions/{id}", 404, id=made["id"])
    await call("PUT", "/api/me/mutes/{room}", 204, room=room)
    await call("GET", "/api/me/mutes", 200)
    await call("DELETE", "/api/me/mutes/{room}", 204, room=room)

    # -- durable subscriptions ----------------------------------------------------------------
    try:
        await alice.request(
            "SUBSCRIBE",
            "id:openapi",
            "destination:/topic/openapi.durable",
            "durable:true",
            "auto-delete:false",
        )
    finally:
        await alice.close()
    listing = await call("GET", "/api/durable-subscriptions", 200)
    (subscription,) = listing["subscriptions"]
    durable = "/api/durable-subscriptions/{queue}"
    await call("DELETE", durable, 200, queue=subscription["queue"])
    await call("DELETE", durable, 404, queue=subscription["queue"])

    # -- every operation that needs credentials: 401 with WWW-Authenticate without them -----
    examples = {"room": room, "user": "bob", "id": "x", "queue": "q", "path": "x"}
    for method, path in sorted(spec_operations()):
        if secured(method, path):
            await call(method, path, 401, auth=None, **examples)
        await asyncio.sleep(0)
    await call("GET", "/api/me/profile", 401, auth=basic("alice", "wrong"))


async def test_in_jwt_mode_every_401_challenges_for_a_bearer_token(
    amqp_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """The history API among them: no token and an expired one both get the challenge."""
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        stomp_port=0,
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        store=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        auth="jwt",
        node_id="gw-openapi-jwt",
    )
    secret = "openapi-" * 4
    env = {"STOMPGATE_JWT_ALGORITHMS": "HS256", "STOMPGATE_JWT_KEY": secret}
    gateway = Gateway(settings, access=build_access(settings, env))
    await gateway.start()
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 3600}, secret, "HS256")
    examples: dict[str, Any] = {
        "room": "lobby",
        "user": "bob",
        "id": "x",
        "queue": "q",
        "path": "x",
    }
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, f"http://127.0.0.1:{gateway.http_port}")
            for method, path in sorted(spec_operations()):
                if secured(method, path):
                    await api.call(method, path, 401, auth=None, **examples)
                    await api.call(method, path, 401, auth=f"Bearer {expired}", **examples)
            async with http.get(
                f"{api.base}/api/rooms/lobby/messages",
                headers={"Authorization": f"Bearer {expired}"},
            ) as response:
                assert response.headers["WWW-Authenticate"] == 'Bearer realm="stompgate"'
                assert "expired" in (response.reason or "")
    finally:
        await gateway.stop()
