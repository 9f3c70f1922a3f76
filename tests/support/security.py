"""Helpers for the end-to-end security tests: tokens, JWT-mode gateways, a raw STOMP peer.

``StompPeer`` is a deliberately small STOMP 1.2 client written against the wire format, over
plain TCP (asyncio streams) or a real WebSocket (aiohttp, subprotocol ``v12.stomp``, frames as
text messages), so a test sees exactly the frames the gateway sent, including the ERROR that
ends a session and the close that follows it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gateway_proc import GatewayProcess
from tests.support.namespace import share_default_namespace

HS_SECRET = "stompgate-e2e-secret-0123456789abcdef"  # >= 32 bytes, as HS256 requires
AUDIENCE = "stompgate-e2e"
ISSUER = "https://issuer.e2e.example"


# -- tokens ------------------------------------------------------------------------------------


def claims(user: str = "alice", *, ttl: float = 3600, **overrides: Any) -> dict[str, Any]:
    """Valid claims for ``user``, expiring in ``ttl`` seconds; ``name=None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": user,
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + ttl,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "roles": ["member"],
        "rooms": [],
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def hs_token(user: str = "alice", *, secret: str = HS_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(user, **overrides), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token(header: dict[str, Any], payload: Any, hmac_key: bytes = b"") -> str:
    """A compact JWS built by hand: pyjwt refuses to make ``alg: none`` or HS-over-PEM tokens."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = (
        hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest() if hmac_key else b""
    )
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class RsaKey:
    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls) -> RsaKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
        )

    def token(self, user: str = "alice", **overrides: Any) -> str:
        return jwt.encode(claims(user, **overrides), self.private_pem, algorithm="RS256")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- gateways ----------------------------------------------------------------------------------


def jwt_env(redis_prefix: str, **overrides: str) -> dict[str, str]:
    """Environment of a JWT-mode gateway (HS256 with ``HS_SECRET``) whose Redis keys, including
    room membership sets and per-user connection counts, all live under ``redis_prefix``."""
    env = {
        "STOMPGATE_AUTH": "jwt",
        "STOMPGATE_JWT_ALGORITHMS": "HS256",
        "STOMPGATE_JWT_KEY": HS_SECRET,
        "STOMPGATE_JWT_AUDIENCE": AUDIENCE,
        "STOMPGATE_JWT_ISSUER": ISSUER,
        "STOMPGATE_JWT_LEEWAY": "0",
        "STOMPGATE_REDIS_PREFIX": redis_prefix,
        "STOMPGATE_MEMBERSHIP_PREFIX": redis_prefix,
        "STOMPGATE_MEMBERSHIP_CACHE_TTL": "0",
    }
    env.update(overrides)
    return env


@contextlib.contextmanager
def jwt_gateways(
    amqp_url: str, log_dir: Path, envs: Sequence[tuple[str, Mapping[str, str]]]
) -> Iterator[list[GatewayProcess]]:
    """Start one JWT-mode gateway per ``(node_id, env)``; stop them all afterwards."""
    nodes = [GatewayProcess(amqp_url=amqp_url, node_id=n, env=e, auth="jwt") for n, e in envs]
    try:
        for node in nodes:
            node.start(log_dir)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@contextlib.contextmanager
def redis_keys(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """A sync Redis client and a private key prefix; the prefix's keys are deleted afterwards."""
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    share_default_namespace(redis_url, prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


# -- a raw STOMP peer --------------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\c": ":"}


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _UNESCAPES:
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Frame:
    command: str
    headers: dict[str, str]  # the first occurrence of a header wins, as in STOMP
    body: str
    all_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def message(self) -> str:
        return self.headers.get("message", "")

    @property
    def said(self) -> str:
        """An ERROR's first body line: the precise case (``message`` is the short text)."""
        return self.body.split("\n", 1)[0]


Headers = Mapping[str, str] | Sequence[tuple[str, str]]


class StompPeer:
    """A STOMP 1.2 client over a byte pipe: ``send_frame``, ``frame``, ``expect_closed``."""

    def __init__(
        self,
        write: Callable[[bytes], Any],
        read: Callable[[], Any],
        close: Callable[[], Any],
    ) -> None:
        self._write = write
        self._read = read
        self._close = close
        self._buffer = b""
        self._eof = False
        self.connected = False

    # transports

    @classmethod
    @asynccontextmanager
    async def tcp(cls, port: int) -> AsyncIterator[StompPeer]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        async def read() -> bytes:
            return await reader.read(65536)

        async def close() -> None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

        peer = cls(write, read, close)
        try:
            yield peer
        finally:
            await peer.close()

    @classmethod
    @asynccontextmanager
    async def ws(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        origin: str | None = None,
    ) -> AsyncIterator[StompPeer]:
        """A WebSocket peer; a refused handshake raises ``aiohttp.WSServerHandshakeError``."""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url,
                protocols=("v12.stomp",),
                headers=dict(headers or {}),
                origin=origin,
                autoping=True,
            ) as ws,
        ):

            async def write(data: bytes) -> None:
                await ws.send_str(data.decode())

            async def read() -> bytes:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    return str(msg.data).encode()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    return bytes(msg.data)
                return b""  # CLOSE, CLOSED, ERROR: the session is over

            async def close() -> None:
                await ws.close()

            peer = cls(write, read, close)
            assert ws.protocol == "v12.stomp"
            try:
                yield peer
            finally:
                await peer.close()

    async def close(self) -> None:
        await self._close()

    # frames out

    async def send_frame(self, command: str, headers: Headers = (), body: str = "") -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        raw = command in ("CONNECT", "STOMP")  # CONNECT headers are never escaped
        lines = [
            command,
            *(f"{k if raw else _escape(k)}:{v if raw else _escape(v)}" for k, v in items),
        ]
        await self.send_raw(("\n".join(lines) + "\n\n" + body + "\x00").encode())

    async def send_raw(self, data: bytes) -> None:
        await self._write(data)

    async def connect(
        self,
        token: str | None = None,
        *,
        headers: Headers = (),
        passcode: str | None = None,
    ) -> Frame:
        """CONNECT (token in the passcode unless ``passcode``/``headers`` say otherwise)."""
        items = [("accept-version", "1.2"), ("host", "stompgate"), ("heart-beat", "0,0")]
        if token is not None:
            items += [("login", ""), ("passcode", token)]
        elif passcode is not None:
            items += [("login", ""), ("passcode", passcode)]
        items += list(headers.items() if isinstance(headers, Mapping) else headers)
        await self.send_frame("CONNECT", items)
        return await self.frame()

    async def connect_refused(
        self, token: str | None = None, *, headers: Headers = (), passcode: str | None = None
    ) -> Frame:
        """CONNECT that must be answered by an ERROR and a close; the ERROR."""
        found = await self.connect(token, headers=headers, passcode=passcode)
        assert found.command == "ERROR", found
        await self.expect_closed()
        return found

    # frames in

    def _parse(self) -> Frame | None:
        buffer = self._buffer.lstrip(b"\r\n")  # heart-beats
        self._buffer = buffer
        end = buffer.find(b"\n\n")
        if end < 0:
            return None
        head = buffer[:end].decode().split("\n")
        command, header_lines = head[0].rstrip("\r"), head[1:]
        decode = _unescape if self.connected and command != "CONNECTED" else (lambda s: s)
        pairs: list[tuple[str, str]] = []
        for line in header_lines:
            name, _, value = line.rstrip("\r").partition(":")
            pairs.append((decode(name), decode(value)))
        headers: dict[str, str] = {}
        for name, value in pairs:
            headers.setdefault(name, value)
        start = end + 2
        if "content-length" in headers:
            stop = start + int(headers["content-length"])
            if len(buffer) < stop + 1:
                return None
        else:
            stop = buffer.find(b"\x00", start)
            if stop < 0:
                return None
        self._buffer = buffer[stop + 1 :]
        if command == "CONNECTED":
            self.connected = True
        return Frame(command, headers, buffer[start:stop].decode(), tuple(pairs))

    async def frame(self, within: float = 10.0) -> Frame:
        """The next frame; ``EOFError`` if the gateway closed first."""
        async with asyncio.timeout(within):
            while True:
                found = self._parse()
                if found is not None:
                    return found
                if self._eof:
                    raise EOFError(f"closed; unparsed bytes: {self._buffer[:200]!r}")
                data = await self._read()
                if not data:
                    self._eof = True
                self._buffer += data

    async def expect_error(self, within: float = 10.0) -> Frame:
        """The ERROR that ends this session (frames before it are skipped), then the close."""
        async with asyncio.timeout(within):
            while True:
                found = await self.frame()
                if found.command == "ERROR":
                    break
        await self.expect_closed(within)
        return found

    async def expect_closed(self, within: float = 10.0) -> None:
        """Wait until the gateway closes the connection (no further frame may come)."""
        async with asyncio.timeout(within):
            while not self._eof:
                data = await self._read()
                if not data:
                    self._eof = True
                self._buffer += data
        assert self._buffer.strip(b"\r\n") == b"", f"bytes after the ERROR: {self._buffer!r}"

    async def receipt(self, receipt_id: str, within: float = 10.0) -> list[Frame]:
        """Frames until (and including) RECEIPT ``receipt_id``; an ERROR fails the test."""
        seen: list[Frame] = []
        async with asyncio.timeout(within):
            while True:
                found = await self.frame()
                seen.append(found)
                if found.command == "ERROR":
                    raise AssertionError(f"ERROR instead of RECEIPT {receipt_id}: {found}")
                if found.command == "RECEIPT" and found.headers.get("receipt-id") == receipt_id:
                    return seen


async def subscribe(peer: StompPeer, destination: str, sub_id: str = "s") -> None:
    await peer.send_frame(
        "SUBSCRIBE", {"id": sub_id, "destination": destination, "receipt": f"sub-{sub_id}"}
    )
    await peer.receipt(f"sub-{sub_id}")


async def post_typing(peer: StompPeer, room: str, receipt: str = "typing") -> list[Frame]:
    """SEND a typing event through the chat layer (``/app``); frames up to its RECEIPT."""
    await peer.send_frame(
        "SEND",
        {
            "destination": f"/app/rooms/{room}/typing",
            "content-type": "application/json",
            "receipt": receipt,
        },
        json.dumps({"typing": True}),
    )
    return await peer.receipt(receipt)


async def next_message(peer: StompPeer, seen: Sequence[Frame] = (), within: float = 10.0) -> Frame:
    """The first MESSAGE in ``seen``, else the next one read."""
    for found in seen:
        if found.command == "MESSAGE":
            return found
    async with asyncio.timeout(within):
        while True:
            found = await peer.frame()
            if found.command == "MESSAGE":
                return found
            assert found.command != "ERROR", found


async def round_trip(
    port: int, user: str | None = None, *, token: str | None = None, room: str | None = None
) -> None:
    """A client on the gateway's TCP ``port`` connects, subscribes to a room, posts to it
    through ``/app`` and sees its own event come back, stamped with its user: the gateway is
    still serving."""
    room = room or unique("alive")
    user = user or unique("bystander")
    token = token or hs_token(user, rooms=[room])
    async with StompPeer.tcp(port) as peer:
        connected = await peer.connect(token)
        assert connected.command == "CONNECTED", connected
        await echo(peer, user, room)
        await peer.send_frame("DISCONNECT", {"receipt": "bye"})
        await peer.receipt("bye")


async def echo(peer: StompPeer, user: str, room: str) -> None:
    """On a connected session of ``user`` (a member of ``room``): subscribe, post, see it.

    A ``typing: false`` that reaches the room meanwhile is not the echo (it posts ``true``):
    a session that typed there and was closed, say for flooding, ends its typing so."""
    sub_id = unique("echo")
    await subscribe(peer, f"/topic/room.{room}", sub_id)
    seen = await post_typing(peer, room, receipt=unique("typing"))
    message = await next_message(peer, seen)
    while json.loads(message.body).get("typing") is False:
        seen = [f for f in seen if f is not message]
        message = await next_message(peer, seen)
    assert message.headers["sender"] == user
    assert json.loads(message.body)["user"] == user
    await peer.send_frame("UNSUBSCRIBE", {"id": sub_id, "receipt": f"un-{sub_id}"})
    await peer.receipt(f"un-{sub_id}")
