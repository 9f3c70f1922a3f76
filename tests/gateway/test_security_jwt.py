"""JWT authentication end to end: real gateway processes in JWT mode, real sockets.

Every refused token gets the exact ERROR ``message`` of docs/security.md, the socket is closed,
the token is not echoed back, and a fresh client on the same gateway still round-trips a
message (the gateway keeps serving everyone else).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway_proc import WS_IMPLS, GatewayProcess, on_ws_impl
from tests.support.security import (
    HS_SECRET,
    RsaKey,
    StompPeer,
    claims,
    forged_token,
    hs_token,
    jwt_env,
    jwt_gateways,
    next_message,
    post_typing,
    redis_keys,
    round_trip,
    subscribe,
    unique,
)


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return RsaKey.generate()


@pytest.fixture(scope="module")
def nodes(
    amqp_url: str, redis_url: str, log_dir: Path, rsa_key: RsaKey
) -> Iterator[dict[str, GatewayProcess]]:
    """``hs``: HS256 with a secret; ``rs``: RS256 pinned, public key from a PEM file;
    ``mixed``: RS256 and HS256 pinned, with the PEM file and the HS secret."""
    pem = log_dir / "issuer.pem"
    pem.write_text(rsa_key.public_pem)
    with redis_keys(redis_url) as (_, prefix):
        rsa_env = {"STOMPGATE_JWT_KEY_FILE": str(pem), "STOMPGATE_JWT_KEY": ""}
        envs: list[tuple[str, dict[str, str]]] = [
            ("jwt-hs", jwt_env(prefix)),
            ("jwt-rs", jwt_env(prefix, STOMPGATE_JWT_ALGORITHMS="RS256", **rsa_env)),
            (
                "jwt-mixed",
                jwt_env(
                    prefix, STOMPGATE_JWT_ALGORITHMS="RS256,HS256", STOMPGATE_JWT_KEY_FILE=str(pem)
                ),
            ),
        ]
        with jwt_gateways(amqp_url, log_dir, envs) as started:
            yield dict(zip(("hs", "rs", "mixed"), started, strict=True))


async def refused(port: int, token: str | None, **connect: Any) -> str:
    """CONNECT over TCP with ``token``; what the ERROR says (the socket must close after it):
    its body's first line, under RabbitMQ's ``Bad CONNECT`` (a frame limit has its own)."""
    async with StompPeer.tcp(port) as peer:
        error = await peer.connect_refused(token, **connect)
    if token:
        assert token not in error.body
        assert token not in str(error.headers)
    reason = error.headers.get("stompgate-reason")
    assert (error.message, reason) == ("Bad CONNECT", "auth") or reason == "protocol"
    return error.said


# -- the token itself --------------------------------------------------------------------------


async def test_a_valid_token_in_the_passcode_connects(nodes: dict[str, GatewayProcess]) -> None:
    room = unique("valid")
    async with StompPeer.tcp(nodes["hs"].stomp_port) as peer:
        connected = await peer.connect(hs_token("carol", rooms=[room]))
        assert connected.command == "CONNECTED"
        assert connected.headers["user-name"] == "carol"
        await subscribe(peer, f"/topic/room.{room}")
        message = await next_message(peer, await post_typing(peer, room))
        assert message.headers["sender"] == "carol"


def _now() -> int:
    return int(time.time())


def _tampered() -> str:
    """alice's signature on mallory's claims."""
    head, _, signature = hs_token("alice").split(".")
    return f"{head}.{hs_token('mallory').split('.')[1]}.{signature}"


BAD_HS_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: hs_token(exp=_now() - 5), "token expired"),
    "not yet valid (nbf)": (lambda: hs_token(nbf=_now() + 600), "token not yet valid"),
    "issued in the future (iat)": (lambda: hs_token(iat=_now() + 600), "token not yet valid"),
    "wrong audience": (lambda: hs_token(aud="someone-else"), "token audience mismatch"),
    "no audience": (lambda: hs_token(aud=None), "token audience mismatch"),
    "wrong issuer": (lambda: hs_token(iss="https://evil.example"), "token issuer mismatch"),
    "wrong key": (
        lambda: hs_token(secret="another-secret-another-secret-0123456789"),
        "token signature invalid",
    ),
    "tampered payload": (_tampered, "token signature invalid"),
    "alg none": (
        lambda: forged_token({"alg": "none", "typ": "JWT"}, claims()),
        "token algorithm not allowed: none",
    ),
    "alg NoNe": (
        lambda: forged_token({"alg": "NoNe"}, claims()),
        "token algorithm not allowed: none",
    ),
    "alg not pinned (HS512)": (
        lambda: forged_token({"alg": "HS512"}, claims(), HS_SECRET.encode()),
        "token algorithm not allowed: HS512",
    ),
    "missing sub": (lambda: hs_token(sub=None), "token missing claim: sub"),
    "missing exp": (lambda: hs_token(exp=None), "token missing claim: exp"),
    "subject with spaces": (lambda: hs_token(" alice "), "token subject invalid"),
    "non-numeric exp": (lambda: hs_token(exp="tomorrow"), "malformed token"),
    "not a JWS": (lambda: "not-a-token", "malformed token"),
    "bad base64": (lambda: "@@@.@@@.@@@", "malformed token"),
    "payload not an object": (
        lambda: forged_token({"alg": "HS256"}, ["alice"], HS_SECRET.encode()),
        "malformed token",
    ),
}


@pytest.mark.parametrize("case", BAD_HS_TOKENS)
async def test_a_bad_token_is_refused_with_the_exact_error(
    nodes: dict[str, GatewayProcess], case: str
) -> None:
    make, expected = BAD_HS_TOKENS[case]
    port = nodes["hs"].stomp_port
    assert await refused(port, make()) == expected
    await round_trip(port)


async def test_an_oversized_token_is_stopped_by_the_header_line_limit(
    nodes: dict[str, GatewayProcess],
) -> None:
    """Tokens over 16 KiB are malformed, but a CONNECT header line stops at 8 KiB first."""
    token = hs_token(padding="x" * 17000)
    line = len(f"passcode:{token}")
    expected = f"header line too long: {line} bytes > max_header_line 8192"
    assert await refused(nodes["hs"].stomp_port, token) == expected
    await round_trip(nodes["hs"].stomp_port)


async def test_no_token_at_all(nodes: dict[str, GatewayProcess]) -> None:
    port = nodes["hs"].stomp_port
    assert await refused(port, None) == "missing token"
    await round_trip(port)


async def test_rs256_with_a_pem_key_file(nodes: dict[str, GatewayProcess], rsa_key: RsaKey) -> None:
    port = nodes["rs"].stomp_port
    room = unique("rs")
    await round_trip(port, "rita", token=rsa_key.token("rita", rooms=[room]), room=room)
    other = RsaKey.generate()
    assert await refused(port, other.token("rita")) == "token signature invalid"
    assert await refused(port, rsa_key.token("rita", exp=_now() - 1)) == "token expired"
    await round_trip(port, "rita", token=rsa_key.token("rita", rooms=[room]), room=room)


async def test_hs_rs_key_confusion_is_refused(
    nodes: dict[str, GatewayProcess], rsa_key: RsaKey
) -> None:
    """A token "signed" with HMAC using the server's RSA public key as the secret."""
    confused = forged_token(
        {"alg": "HS256", "typ": "JWT"},
        claims("mallory", roles=["admin"]),
        rsa_key.public_pem.encode(),
    )
    # RS256 pinned: HS256 is not even considered.
    assert await refused(nodes["rs"].stomp_port, confused) == "token algorithm not allowed: HS256"
    # HS256 pinned too: PEM text is never an HMAC secret, only the configured one is.
    assert await refused(nodes["mixed"].stomp_port, confused) == "token signature invalid"
    assert await refused(nodes["mixed"].stomp_port, forged_token({"alg": "none"}, claims())) == (
        "token algorithm not allowed: none"
    )
    room = unique("mixed")
    for token in (rsa_key.token("rita", rooms=[room]), hs_token("rita", rooms=[room])):
        await round_trip(nodes["mixed"].stomp_port, "rita", token=token, room=room)


# -- where the token comes from ----------------------------------------------------------------


async def test_token_in_a_connect_authorization_header(nodes: dict[str, GatewayProcess]) -> None:
    port = nodes["hs"].stomp_port
    async with StompPeer.tcp(port) as peer:
        connected = await peer.connect(headers={"Authorization": f"Bearer {hs_token('dora')}"})
        assert connected.headers["user-name"] == "dora"
    async with StompPeer.tcp(port) as peer:  # a Bearer prefix in the passcode is accepted too
        connected = await peer.connect(passcode=f"Bearer {hs_token('dora')}")
        assert connected.headers["user-name"] == "dora"
    expired = hs_token("dora", exp=_now() - 5)
    assert await refused(port, None, headers={"authorization": f"Bearer {expired}"}) == (
        "token expired"
    )


async def ws_session(url: str, user: str, room: str, **ws: Any) -> None:
    """Over a real WebSocket: CONNECT with no token in it, then subscribe and post."""
    async with StompPeer.ws(url, **ws) as peer:
        connected = await peer.connect()
        assert connected.command == "CONNECTED", connected
        assert connected.headers["user-name"] == user
        await subscribe(peer, f"/topic/room.{room}")
        message = await next_message(peer, await post_typing(peer, room))
        assert message.headers["sender"] == user


@pytest.fixture(scope="module")
def hs_aiohttp(nodes: dict[str, GatewayProcess], log_dir: Path) -> Iterator[GatewayProcess]:
    """Node ``hs`` with its WebSockets served by aiohttp (started when a case first needs it)."""
    with on_ws_impl(nodes["hs"], "aiohttp", log_dir) as node:
        yield node


@pytest.fixture(params=WS_IMPLS)
def hs_ws(request: pytest.FixtureRequest, nodes: dict[str, GatewayProcess]) -> GatewayProcess:
    """Node ``hs`` over each WebSocket path (``--ws-impl``)."""
    return request.getfixturevalue("hs_aiohttp") if request.param == "aiohttp" else nodes["hs"]


async def test_token_at_the_websocket_handshake(hs_ws: GatewayProcess) -> None:
    node = hs_ws
    room = unique("ws")
    token = hs_token("erin", rooms=[room])
    await ws_session(node.ws_url, "erin", room, headers={"Authorization": f"Bearer {token}"})
    await ws_session(f"{node.ws_url}?access_token={token}", "erin", room)
    await ws_session(node.ws_url, "erin", room, headers={"Cookie": f"stompgate_token={token}"})


async def test_token_in_connect_over_websocket(hs_ws: GatewayProcess) -> None:
    room = unique("ws")
    async with StompPeer.ws(hs_ws.ws_url) as peer:
        connected = await peer.connect(hs_token("erin", rooms=[room]))
        assert connected.headers["user-name"] == "erin"
        await subscribe(peer, f"/topic/room.{room}")
        message = await next_message(peer, await post_typing(peer, room))
        assert message.headers["sender"] == "erin"


async def test_a_connect_token_beats_a_stale_handshake_cookie(hs_ws: GatewayProcess) -> None:
    url = hs_ws.ws_url
    stale = {"Cookie": f"stompgate_token={hs_token('erin', exp=_now() - 60)}"}
    async with StompPeer.ws(url, headers=stale) as peer:
        connected = await peer.connect(hs_token("frank"))
        assert connected.headers["user-name"] == "frank"
    async with StompPeer.ws(url, headers=stale) as peer:
        assert (await peer.connect_refused()).said == "token expired"
    fresh = {"Cookie": f"stompgate_token={hs_token('erin')}"}
    async with StompPeer.ws(url, headers=fresh) as peer:  # ... and a bad CONNECT token loses
        error = await peer.connect_refused(hs_token("erin", aud="other"))
        assert (error.message, error.said) == ("Bad CONNECT", "token audience mismatch")


async def test_no_token_over_websocket(hs_ws: GatewayProcess) -> None:
    async with StompPeer.ws(hs_ws.ws_url) as peer:
        error = await peer.connect_refused()
    assert (error.message, error.said) == ("Bad CONNECT", "missing token")
    await round_trip(hs_ws.stomp_port)


# -- expiry during the session -----------------------------------------------------------------


async def test_a_token_expiring_mid_session_ends_the_session(
    nodes: dict[str, GatewayProcess],
) -> None:
    node = nodes["hs"]
    room = unique("expiry")
    async with (
        StompPeer.ws(node.ws_url) as short,
        StompPeer.tcp(node.stomp_port) as long,
    ):
        assert (await short.connect(hs_token("gina", ttl=2, rooms=[room]))).command == "CONNECTED"
        assert (await long.connect(hs_token("hugo", rooms=[room]))).command == "CONNECTED"
        await subscribe(short, f"/topic/room.{room}")
        started = time.monotonic()
        error = await short.expect_error(within=6)
        assert error.message == "Credential expired"  # RabbitMQ's text
        assert error.said == "token expired"
        assert error.body.endswith("\nthe session's token expired; reconnect with a fresh token")
        assert 0.5 < time.monotonic() - started < 4
        # The other session on the node goes on.
        await subscribe(long, f"/topic/room.{room}")
        message = await next_message(long, await post_typing(long, room))
        assert message.headers["sender"] == "hugo"
