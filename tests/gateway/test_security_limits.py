"""Abuse limits end to end in JWT mode: rates, sizes, counts, Origin, CONNECT timeout.

``a`` and ``b`` are two gateway processes sharing one Redis prefix (so per-user connection
counts span both); ``ip`` allows only three connections per client IP. Each breach is asserted
by its exact ERROR message (or HTTP status and reason for a refused Origin), and afterwards
other clients on the same gateway still round-trip a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway_proc import WS_IMPLS, GatewayProcess, on_ws_impl
from tests.support.process import ROOT
from tests.support.security import (
    StompPeer,
    echo,
    hs_token,
    jwt_env,
    jwt_gateways,
    redis_keys,
    round_trip,
    subscribe,
    unique,
)

LIMITS = {
    "STOMPGATE_MAX_CONNECTIONS_PER_USER": "2",
    "STOMPGATE_FRAMES_PER_SECOND": "20",
    "STOMPGATE_FRAMES_BURST": "20",
    "STOMPGATE_BYTES_PER_SECOND": "20000",
    "STOMPGATE_BYTES_BURST": "65536",
    "STOMPGATE_MAX_FRAME_SIZE": "65536",
    "STOMPGATE_MAX_SUBSCRIPTIONS": "3",
    "STOMPGATE_CONNECT_TIMEOUT": "1",
    "STOMPGATE_ALLOWED_ORIGINS": "https://chat.example.com",
    # The TCP listener and service roles have limits of their own (off by default): the
    # same ones here, so each case holds on both listeners and for services too.
    "STOMPGATE_TCP_FRAMES_PER_SECOND": "20",
    "STOMPGATE_TCP_FRAMES_BURST": "20",
    "STOMPGATE_TCP_BYTES_PER_SECOND": "20000",
    "STOMPGATE_TCP_BYTES_BURST": "65536",
    "STOMPGATE_TCP_MAX_FRAME_SIZE": "65536",
    "STOMPGATE_SERVICE_ROLES": "",
}


@pytest.fixture(scope="module")
def nodes(amqp_url: str, redis_url: str, log_dir: Path) -> Iterator[dict[str, GatewayProcess]]:
    acl = str(ROOT / "examples" / "acl.toml")  # role "service" may SEND to /topic/**
    with redis_keys(redis_url) as (_, prefix):
        envs = [
            ("limits-a", jwt_env(prefix, STOMPGATE_ACL_FILE=acl, **LIMITS)),
            ("limits-b", jwt_env(prefix, STOMPGATE_ACL_FILE=acl, **LIMITS)),
            ("limits-ip", jwt_env(prefix, STOMPGATE_MAX_CONNECTIONS_PER_IP="3")),
        ]
        with jwt_gateways(amqp_url, log_dir, envs) as started:
            yield dict(zip(("a", "b", "ip"), started, strict=True))


#: The listeners a case runs on: TCP, and WebSocket over each path (``--ws-impl``).
TRANSPORTS = ["tcp", *(f"ws-{impl}" for impl in WS_IMPLS)]


@pytest.fixture(scope="module")
def a_aiohttp(nodes: dict[str, GatewayProcess], log_dir: Path) -> Iterator[GatewayProcess]:
    """Node ``a`` with its WebSockets served by aiohttp (started when a case first needs it)."""
    with on_ws_impl(nodes["a"], "aiohttp", log_dir) as node:
        yield node


def node_a(
    request: pytest.FixtureRequest, nodes: dict[str, GatewayProcess], over: str
) -> GatewayProcess:
    """Node ``a``, or its twin whose WebSocket path is the one ``over`` names."""
    return request.getfixturevalue("a_aiohttp") if over.endswith("aiohttp") else nodes["a"]


@contextlib.asynccontextmanager
async def peer_on(node: GatewayProcess, transport: str) -> AsyncIterator[StompPeer]:
    opened = StompPeer.tcp(node.stomp_port) if transport == "tcp" else StompPeer.ws(node.ws_url)
    async with opened as peer:
        yield peer


# -- rates and sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_frame_flood_beyond_the_rate_limit(
    request: pytest.FixtureRequest, nodes: dict[str, GatewayProcess], transport: str
) -> None:
    node = node_a(request, nodes, transport)
    room = unique("flood")
    async with (
        StompPeer.tcp(node.stomp_port) as bystander,
        peer_on(node, transport) as flooder,
    ):
        assert (await bystander.connect(hs_token("alice", rooms=[room]))).command == "CONNECTED"
        assert (await flooder.connect(hs_token("mallory", rooms=[room]))).command == "CONNECTED"
        frames = "".join(
            f'SEND\ndestination:/app/rooms/{room}/typing\nreceipt:r-{i}\n\n{{"typing":true}}\x00'
            for i in range(60)
        )
        await flooder.send_raw(frames.encode())
        seen = []
        while (found := await flooder.frame()).command == "RECEIPT":
            seen.append(found.headers["receipt-id"])
        await flooder.expect_closed()
        assert found.command == "ERROR"
        assert found.message == "Rate limit exceeded"
        assert found.said == "rate limit exceeded: frames_per_second 20 (burst 20)"
        assert found.headers["stompgate-reason"] == "frames_per_second"
        # Every frame accepted before the breach was handled and confirmed, in order.
        assert 18 <= len(seen) < 60
        assert seen == [f"r-{i}" for i in range(len(seen))]
        await echo(bystander, "alice", room)
    await round_trip(node.stomp_port)


async def test_a_byte_flood_is_charged_across_reads(nodes: dict[str, GatewayProcess]) -> None:
    """Frames that arrive in many small reads pay for every byte (20 kB/s, burst 64 KiB)."""
    node = nodes["a"]
    destination = f"/topic/{unique('bulk')}"
    async with StompPeer.tcp(node.stomp_port) as peer:
        assert (await peer.connect(hs_token("svc", roles=["service"]))).command == "CONNECTED"
        for n in range(2):
            frame = f"SEND\ndestination:{destination}\nreceipt:bulk-{n}\n\n{'x' * 40000}\x00"
            data = frame.encode()
            for start in range(0, len(data), 4000):
                await peer.send_raw(data[start : start + 4000])
                await asyncio.sleep(0.01)
        assert (await peer.frame()).headers.get("receipt-id") == "bulk-0"
        error = await peer.expect_error()
    assert error.message == "Rate limit exceeded"
    assert error.said == "rate limit exceeded: bytes_per_second 20000 (burst 65536)"
    await round_trip(node.stomp_port)


async def test_a_frame_over_the_size_limit(nodes: dict[str, GatewayProcess]) -> None:
    node = nodes["a"]
    head = f"SEND\ndestination:/topic/{unique('big')}\ncontent-length:70000\n\n"
    async with StompPeer.tcp(node.stomp_port) as peer:
        assert (await peer.connect(hs_token("svc", roles=["service"]))).command == "CONNECTED"
        await peer.send_raw(head.encode() + b"x" * 100)  # refused on its head already
        error = await peer.expect_error()
    size = len(head) + 70000 + 1
    assert error.message == "Frame too large"
    assert error.said == f"frame too large: {size} bytes > max_frame_size 65536"
    await round_trip(node.stomp_port)


async def test_too_many_subscriptions(nodes: dict[str, GatewayProcess]) -> None:
    node = nodes["a"]
    rooms = [unique("subs") for _ in range(4)]
    async with StompPeer.tcp(node.stomp_port) as peer:
        assert (await peer.connect(hs_token("alice", rooms=rooms))).command == "CONNECTED"
        for n, room in enumerate(rooms[:3]):
            await subscribe(peer, f"/topic/room.{room}", f"s{n}")
        await peer.send_frame("SUBSCRIBE", {"id": "s3", "destination": f"/topic/room.{rooms[3]}"})
        error = await peer.expect_error()
    assert error.message == "Too many subscriptions"
    assert error.said == "too many subscriptions: 4 > max_subscriptions 3"
    await round_trip(node.stomp_port)


# -- connection counts -------------------------------------------------------------------------


async def test_connections_per_user_count_across_nodes(nodes: dict[str, GatewayProcess]) -> None:
    a, b = nodes["a"], nodes["b"]
    user = unique("ivy")
    room = unique("ivy")
    token = hs_token(user, rooms=[room])
    expected = f"too many connections for user {user}: 3 > max_connections_per_user 2"
    async with StompPeer.tcp(a.stomp_port) as first, StompPeer.tcp(b.stomp_port) as second:
        assert (await first.connect(token)).command == "CONNECTED"
        assert (await second.connect(token)).command == "CONNECTED"
        for node in (a, b):
            async with StompPeer.tcp(node.stomp_port) as third:
                refusal = await third.connect_refused(token)
                assert (refusal.message, refusal.said) == ("Too many connections", expected)
            await round_trip(node.stomp_port)  # other users are served on both nodes
        await echo(first, user, room)  # ... and so are the user's own live sessions
        await echo(second, user, room)
        await first.close()
        # The slot is given back when the session ends (released in Redis, seen by node b).
        deadline = time.monotonic() + 5
        while True:
            async with StompPeer.tcp(b.stomp_port) as again:
                answer = await again.connect(token)
                if answer.command == "CONNECTED" or time.monotonic() > deadline:
                    break
            await asyncio.sleep(0.1)
        assert answer.command == "CONNECTED", answer


async def test_connections_per_ip(nodes: dict[str, GatewayProcess]) -> None:
    node = nodes["ip"]
    room = unique("ip")
    expected = "too many connections from 127.0.0.1: 4 > max_connections_per_ip 3"
    too_many = "Too many connections"
    async with contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(StompPeer.tcp(node.stomp_port)) for _ in range(3)]
        for n, peer in enumerate(held):
            connected = await peer.connect(hs_token(f"held-{n}", rooms=[room]))
            assert connected.command == "CONNECTED"
        async with StompPeer.tcp(node.stomp_port) as fourth:  # refused at accept: no CONNECT
            error = await fourth.frame()
            await fourth.expect_closed()
        assert (error.command, error.message, error.said) == ("ERROR", too_many, expected)
        assert error.headers["stompgate-reason"] == "connections_per_ip"
        async with StompPeer.ws(node.ws_url) as fourth:  # after the upgrade: an ERROR too
            error = await fourth.frame()
            await fourth.expect_closed()
        assert (error.command, error.message, error.said) == ("ERROR", too_many, expected)
        assert error.headers["stompgate-reason"] == "connections_per_ip"
        await echo(held[0], "held-0", room)  # the sessions already there go on
        await held[2].close()
        for _ in range(50):  # the slot comes back once the gateway saw the close
            try:
                await round_trip(node.stomp_port)
                break
            except (EOFError, AssertionError):
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("no slot came back")


# -- handshake ---------------------------------------------------------------------------------


async def raw_handshake(port: int, origin: str) -> tuple[str, str]:
    """A WebSocket upgrade request with ``origin``: the status line and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n"
            f"Origin: {origin}\r\n\r\n"
        )
        writer.write(request.encode())
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


@pytest.mark.parametrize("impl", WS_IMPLS)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://chat.example.com"])
async def test_a_foreign_origin_gets_403_with_the_reason(
    request: pytest.FixtureRequest, nodes: dict[str, GatewayProcess], origin: str, impl: str
) -> None:
    node = node_a(request, nodes, impl)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with StompPeer.ws(node.ws_url, origin=origin):
            pass
    assert refused.value.status == 403
    status, body = await raw_handshake(node.http_port, origin)
    assert status == f"HTTP/1.1 403 origin not allowed: {origin}"
    assert body == f"origin not allowed: {origin}"
    # Listed and same-host origins pass, and the node goes on serving.
    for allowed in ("https://chat.example.com", f"http://127.0.0.1:{node.http_port}"):
        async with StompPeer.ws(node.ws_url, origin=allowed) as peer:
            assert (await peer.connect(hs_token("alice"))).command == "CONNECTED"
    await round_trip(node.stomp_port)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_slowloris_socket_never_finishing_connect(
    request: pytest.FixtureRequest, nodes: dict[str, GatewayProcess], transport: str
) -> None:
    node = node_a(request, nodes, transport)
    async with peer_on(node, transport) as slow:
        started = time.monotonic()
        served = asyncio.create_task(round_trip(node.stomp_port))  # served meanwhile
        await slow.send_raw(b"CONNECT\naccept-version:1.2\n")
        for n in range(4):  # trickle bytes for 0.8 s: they must not extend the 1 s deadline
            await asyncio.sleep(0.2)
            await slow.send_raw(f"x-{n}:".encode())
        error = await slow.expect_error()
        elapsed = time.monotonic() - started
        await served
    assert error.message == "CONNECT timeout"
    assert error.said == "CONNECT timeout: no CONNECT frame within 1 s"
    assert 0.9 < elapsed < 1.75  # counted from the open (from the last byte: >= 1.8 s)
    await round_trip(node.stomp_port)
