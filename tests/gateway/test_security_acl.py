"""Destination ACLs, destination hygiene and sender stamping, end to end in JWT mode.

Two gateways share one Redis prefix: ``acl`` reads a rules file (examples/acl.toml with a
per-user inbox rule with a custom reason in front); ``default`` has no rules file, so the built-in
default rules apply. Room membership comes from the token's ``rooms`` claim or from the Redis
set ``<prefix>room:<id>:members``. Every refusal is asserted by its exact ERROR message, and
the gateway then still serves other clients.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.gateway_proc import GatewayProcess
from tests.support.process import ROOT
from tests.support.security import (
    StompPeer,
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

INBOX_RULE = """
[[rule]]
pattern = "/topic/inbox.{owner}"
actions = ["subscribe"]
user = "{owner}"
reason = "inbox.{owner} belongs to someone else"
"""


class Env:
    def __init__(
        self, acl: GatewayProcess, default: GatewayProcess, client: redis.Redis, prefix: str
    ):
        self.acl = acl
        self.default = default
        self.redis = client
        self.prefix = prefix

    def add_member(self, room: str, user: str) -> None:
        self.redis.sadd(f"{self.prefix}room:{room}:members", user)

    def remove_member(self, room: str, user: str) -> None:
        self.redis.srem(f"{self.prefix}room:{room}:members", user)


@pytest.fixture(scope="module")
def env(amqp_url: str, redis_url: str, log_dir: Path) -> Iterator[Env]:
    rules = log_dir / "acl.toml"
    # First in the file: a denial reports the first rule that applied (here, before the
    # admins' "/topic/**" rule, whose reason would be "requires role admin").
    example = (ROOT / "examples" / "acl.toml").read_text()
    rules.write_text(example.replace("version = 1\n", "version = 1\n" + INBOX_RULE, 1))
    with redis_keys(redis_url) as (client, prefix):
        envs = [
            ("acl-file", jwt_env(prefix, STOMPGATE_ACL_FILE=str(rules))),
            ("acl-default", jwt_env(prefix)),
        ]
        with jwt_gateways(amqp_url, log_dir, envs) as (acl, default):
            yield Env(acl, default, client, prefix)


async def denied(port: int, token: str, command: str, destination: str) -> str:
    """CONNECT, then ``command`` to ``destination``: what the ERROR that follows says (its
    body's first line; the ``message`` header is RabbitMQ's short text for the case)."""
    async with StompPeer.tcp(port) as peer:
        assert (await peer.connect(token)).command == "CONNECTED"
        headers = {"destination": destination, "receipt": "the-frame"}
        if command == "SUBSCRIBE":
            headers["id"] = "denied"
        await peer.send_frame(command, headers, "{}" if command == "SEND" else "")
        error = await peer.expect_error()
    assert error.headers.get("receipt-id") == "the-frame"
    assert error.headers.get("stompgate-reason") == "denied"
    assert error.message in ("access_refused", "Invalid destination")
    return error.said


# -- room membership ---------------------------------------------------------------------------


async def test_members_by_token_claim_and_by_redis_set(env: Env) -> None:
    room = unique("members")
    await round_trip(env.acl.stomp_port, "alice", token=hs_token("alice", rooms=[room]), room=room)
    env.add_member(room, "bob")  # no rooms claim: membership from Redis (SUBSCRIBE and /app SEND)
    await round_trip(env.acl.stomp_port, "bob", token=hs_token("bob", rooms=[]), room=room)


async def test_a_non_member_is_refused_and_members_go_on(env: Env) -> None:
    room = unique("private")
    port = env.acl.stomp_port
    carol = hs_token("carol", rooms=["elsewhere"])
    async with StompPeer.tcp(port) as member:
        assert (await member.connect(hs_token("alice", rooms=[room]))).command == "CONNECTED"
        await subscribe(member, f"/topic/room.{room}")
        assert await denied(port, carol, "SUBSCRIBE", f"/topic/room.{room}") == (
            f"SUBSCRIBE to /topic/room.{room} denied: not a member of room {room}"
        )
        assert await denied(port, carol, "SEND", f"/app/rooms/{room}/messages") == (
            f"SEND to /app/rooms/{room}/messages denied: not a member of room {room}"
        )
        # The member's session was not disturbed.
        message = await next_message(member, await post_typing(member, room))
        assert message.headers["sender"] == "alice"
    await round_trip(port)


async def test_membership_revoked_in_redis_is_seen_at_the_next_subscribe(env: Env) -> None:
    room = unique("revoked")
    env.add_member(room, "bob")
    await round_trip(env.acl.stomp_port, "bob", token=hs_token("bob"), room=room)
    env.remove_member(room, "bob")
    assert await denied(
        env.acl.stomp_port, hs_token("bob"), "SUBSCRIBE", f"/topic/room.{room}"
    ) == (f"SUBSCRIBE to /topic/room.{room} denied: not a member of room {room}")


async def test_the_default_rules_use_the_token_rooms_claim_only(env: Env) -> None:
    room = unique("default")
    env.add_member(room, "bob")  # the built-in rules do not look at Redis
    assert await denied(
        env.default.stomp_port, hs_token("bob"), "SUBSCRIBE", f"/topic/room.{room}"
    ) == (f"SUBSCRIBE to /topic/room.{room} denied: not a member of room {room}")
    await round_trip(env.default.stomp_port, "bob", token=hs_token("bob", rooms=[room]), room=room)


async def test_a_user_only_inbox_with_a_custom_reason(env: Env) -> None:
    port = env.acl.stomp_port
    assert await denied(port, hs_token("dave"), "SUBSCRIBE", "/topic/inbox.erin") == (
        "SUBSCRIBE to /topic/inbox.erin denied: inbox.erin belongs to someone else"
    )
    async with StompPeer.tcp(port) as peer:
        assert (await peer.connect(hs_token("dave"))).command == "CONNECTED"
        await subscribe(peer, "/topic/inbox.dave")


# -- wildcards and raw /topic/ SEND -----------------------------------------------------------


async def test_wildcard_subscribe_is_denied_unless_a_rule_allows_it(env: Env) -> None:
    room = unique("wild")
    member = hs_token("alice", rooms=[room])
    expected = "SUBSCRIBE to /topic/room.* denied: wildcard subscriptions are not allowed here"
    for node in (env.acl, env.default):
        assert await denied(node.stomp_port, member, "SUBSCRIBE", "/topic/room.*") == expected
    # The default rules have no wildcard rule at all, even for admins.
    admin = hs_token("root", roles=["admin"])
    assert await denied(env.default.stomp_port, admin, "SUBSCRIBE", "/topic/room.*") == expected
    # The rules file lets admins subscribe with wildcards: they see a member's post.
    async with StompPeer.tcp(env.acl.stomp_port) as watcher:
        assert (await watcher.connect(admin)).command == "CONNECTED"
        await subscribe(watcher, "/topic/room.*")
        await round_trip(env.acl.stomp_port, "alice", token=member, room=room)
        seen = await next_message(watcher)
        assert seen.headers["destination"] == f"/topic/room.{room}"
        assert seen.headers["sender"] == "alice"


async def test_raw_topic_send_is_for_services_only(env: Env) -> None:
    room = unique("raw")
    member = hs_token("alice", rooms=[room])
    service = hs_token("svc-billing", roles=["service"])
    destination = f"/topic/room.{room}"
    assert await denied(env.default.stomp_port, member, "SEND", destination) == (
        f"SEND to {destination} denied: no rule allows it"
    )
    assert await denied(env.default.stomp_port, service, "SEND", destination) == (
        f"SEND to {destination} denied: no rule allows it"
    )
    assert await denied(env.acl.stomp_port, member, "SEND", destination) == (
        f"SEND to {destination} denied: requires role service"
    )
    async with (
        StompPeer.tcp(env.acl.stomp_port) as listener,
        StompPeer.tcp(env.acl.stomp_port) as publisher,
    ):
        assert (await listener.connect(member)).command == "CONNECTED"
        await subscribe(listener, destination)
        assert (await publisher.connect(service)).command == "CONNECTED"
        await publisher.send_frame("SEND", {"destination": destination, "receipt": "p"}, "raw")
        await publisher.receipt("p")
        message = await next_message(listener)
        assert (message.body, message.headers["sender"]) == ("raw", "svc-billing")


# -- sender stamping ---------------------------------------------------------------------------

SPOOFED = [
    ("sender", "mallory"),
    ("Sender", "mallory"),
    ("user-id", "mallory"),
    ("user", "mallory"),
    ("from", "mallory"),
    ("x-user", "mallory"),
    ("JMS-User-Id", "mallory"),
    ("login", "mallory"),
    ("passcode", "hunter2"),
    ("Authorization", "Bearer stolen.token.here"),
    ("stompgate-message-id", "1"),
    ("stompgate-room-seq", "99999"),  # would make every node hold the room's messages
    ("x-stompgate-trusted", "yes"),
]


async def test_a_client_cannot_spoof_the_sender(env: Env) -> None:
    room = unique("spoof")
    destination = f"/topic/room.{room}"
    async with (
        StompPeer.tcp(env.acl.stomp_port) as listener,
        StompPeer.tcp(env.acl.stomp_port) as publisher,
    ):
        assert (await listener.connect(hs_token("alice", rooms=[room]))).command == "CONNECTED"
        await subscribe(listener, destination)
        service = hs_token("svc-billing", roles=["service"])
        assert (await publisher.connect(service)).command == "CONNECTED"
        # A raw /topic/ SEND: the gateway strips identity headers and stamps the sender.
        await publisher.send_frame(
            "SEND", [("destination", destination), *SPOOFED, ("x-n", "1"), ("receipt", "r")], "hi"
        )
        await publisher.receipt("r")
        message = await next_message(listener)
        names = [name.lower() for name, _ in message.all_headers]
        assert [v for k, v in message.all_headers if k.lower() == "sender"] == ["svc-billing"]
        for name, _ in SPOOFED[2:]:
            assert name.lower() not in names, name
        assert message.headers["x-n"] == "1"
        assert "mallory" not in str(message.all_headers)
        assert "stolen" not in str(message.all_headers)
        # Through the chat layer (/app), the sender comes from the session too.
        await listener.send_frame(
            "SEND",
            {
                "destination": f"/app/rooms/{room}/typing",
                "sender": "mallory",
                "user-id": "mallory",
                "receipt": "t",
            },
            json.dumps({"typing": True}),
        )
        message = await next_message(listener, await listener.receipt("t"))
        assert [v for k, v in message.all_headers if k.lower() == "sender"] == ["alice"]
        assert json.loads(message.body)["user"] == "alice"


# -- destination hygiene -----------------------------------------------------------------------

BAD_DESTINATIONS = [
    ("SEND", "/topic/room.a b", "destination has a forbidden character ' ' at position 13"),
    ("SUBSCRIBE", "/topic/room.a\tb", "destination has a forbidden character '\\t' at position 13"),
    ("SUBSCRIBE", "/topic/room.é", "destination has a forbidden character 'é' at position 12"),
    ("SEND", "topic/room.a", "destination must start with '/': 'topic/room.a'"),
    ("SUBSCRIBE", "/topic/room..a", "destination '/topic/room..a' has an empty segment"),
    ("SEND", "/topic/a//b", "destination '/topic/a//b' has an empty segment"),
    ("SEND", "/topic/" + "a" * 300, "destination too long: 307 bytes > 255"),
    ("SEND", "/topic/room.*", "wildcards are not allowed in SEND destinations: '/topic/room.*'"),
    (
        "SUBSCRIBE",
        "/queue/a.*",
        "wildcards are only allowed in the routing key of /topic/ and /exchange/ "
        "subscriptions: '/queue/a.*'",
    ),
    ("SUBSCRIBE", "/topic/ro*m", "wildcard must be a whole word: '/topic/ro*m'"),
]


@pytest.mark.parametrize(("command", "destination", "expected"), BAD_DESTINATIONS)
async def test_a_bad_destination_name_is_refused_with_the_reason(
    env: Env, command: str, destination: str, expected: str
) -> None:
    admin_service = hs_token("root", roles=["admin", "service"])  # the ACL would allow it
    assert await denied(env.acl.stomp_port, admin_service, command, destination) == expected
    await round_trip(env.acl.stomp_port)
