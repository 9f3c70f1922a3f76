"""ACL decisions, with room membership looked up in the real Redis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.auth.acl import Acl, MembershipLookup, Rule
from gateway.auth.errors import AccessDenied
from gateway.auth.identity import Identity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acl.toml"

ALICE = Identity(user="alice", rooms=frozenset({"7"}))
BOB = Identity(user="bob")
SERVICE = Identity(user="svc", roles=frozenset({"service"}))
ADMIN = Identity(user="root", roles=frozenset({"admin"}))
DEV = Identity(user="guest", dev=True)


async def denied(
    acl: Acl,
    identity: Identity,
    action: str,
    destination: str,
    membership: MembershipLookup | None = None,
) -> str:
    with pytest.raises(AccessDenied) as caught:
        await acl.check(identity, action, destination, membership=membership)  # type: ignore[arg-type]
    return caught.value.detail


@pytest.fixture
async def members(redis_client: Redis, redis_prefix: str) -> MembershipLookup:
    await redis_client.sadd(f"{redis_prefix}room:42:members", "bob", "carol")
    return MembershipLookup(redis_client, redis_prefix, cache_ttl=0)


@pytest.fixture(scope="module")
def example() -> Acl:
    return Acl.from_file(EXAMPLE)


# -- the example rules file --------------------------------------------------------------------


async def test_member_by_token_claim(example: Acl) -> None:
    await example.check(ALICE, "subscribe", "/topic/room.7")
    await example.check(ALICE, "send", "/app/rooms/7/messages")


async def test_member_by_redis(example: Acl, members: MembershipLookup) -> None:
    await example.check(BOB, "subscribe", "/topic/room.42", membership=members)
    await example.check(BOB, "send", "/app/rooms/42/messages", membership=members)


async def test_non_member(example: Acl, members: MembershipLookup) -> None:
    assert (
        await denied(example, BOB, "subscribe", "/topic/room.7", members)
        == "SUBSCRIBE to /topic/room.7 denied: not a member of room 7"
    )
    assert (
        await denied(example, ALICE, "send", "/app/rooms/42/messages", members)
        == "SEND to /app/rooms/42/messages denied: not a member of room 42"
    )


async def test_raw_topic_send_denied_for_browsers(example: Acl, members: MembershipLookup) -> None:
    assert (
        await denied(example, ALICE, "send", "/topic/room.7", members)
        == "SEND to /topic/room.7 denied: requires role service"
    )
    await example.check(SERVICE, "send", "/topic/room.7")


async def test_no_rule(example: Acl) -> None:
    assert (
        await denied(example, ALICE, "send", "/topic/x")
        == "SEND to /topic/x denied: requires role service"
    )
    assert (
        await denied(example, ALICE, "send", "/queue/x")
        == "SEND to /queue/x denied: no rule allows it"
    )
    assert (
        await denied(example, ALICE, "subscribe", "/queue/x")
        == "SUBSCRIBE to /queue/x denied: no rule allows it"
    )


async def test_everyone_may_subscribe_own_queue(example: Acl) -> None:
    await example.check(BOB, "subscribe", "/user/queue/notifications")
    assert (
        await denied(example, BOB, "send", "/user/queue/notifications")
        == "SEND to /user/queue/notifications denied: no rule allows it"
    )


async def test_wildcards_only_where_allowed(example: Acl, members: MembershipLookup) -> None:
    assert (
        await denied(example, ALICE, "subscribe", "/topic/room.*", members)
        == "SUBSCRIBE to /topic/room.* denied: wildcard subscriptions are not allowed here"
    )
    await example.check(ADMIN, "subscribe", "/topic/room.*")
    await example.check(ADMIN, "subscribe", "/topic/#")
    await example.check(ADMIN, "subscribe", "/topic/room.99")


async def test_dev_identity_allowed_everything(example: Acl) -> None:
    await example.check(DEV, "send", "/topic/anything")
    await example.check(DEV, "subscribe", "/topic/#")
    await Acl([]).check(DEV, "send", "/queue/x")


async def test_membership_lookup_missing_fails_closed(example: Acl) -> None:
    assert (
        await denied(example, BOB, "subscribe", "/topic/room.42")
        == "SUBSCRIBE to /topic/room.42 denied: not a member of room 42"
    )
    only_redis = Acl.from_toml(
        '[[rule]]\npattern = "/topic/room.{room}"\nactions = ["subscribe"]\n'
        'member_of = "room:{room}:members"\n'
    )
    assert (
        await denied(only_redis, BOB, "subscribe", "/topic/room.42")
        == "SUBSCRIBE to /topic/room.42 denied: room membership cannot be checked"
    )


async def test_redis_down_fails_closed() -> None:
    """Denied, saying why: not the rule's own reason ("not a member"), which would tell a
    member they were removed while Redis is only away."""
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    acl = Acl.from_toml(
        '[[rule]]\npattern = "/topic/room.{room}"\nactions = ["subscribe"]\n'
        'member_of = "room:{room}:members"\nreason = "not a member of room {room}"\n'
    )
    try:
        assert await denied(acl, BOB, "subscribe", "/topic/room.42", MembershipLookup(broken)) == (
            "SUBSCRIBE to /topic/room.42 denied: room membership cannot be checked right now "
            "(Redis unavailable); retry shortly"
        )
    finally:
        await broken.aclose()


# -- rule features -----------------------------------------------------------------------------


async def test_roles_any_of() -> None:
    acl = Acl([Rule("/queue/ops", frozenset({"send"}), roles=frozenset({"admin", "ops"}))])
    await acl.check(Identity(user="o", roles=frozenset({"ops", "x"})), "send", "/queue/ops")
    assert (
        await denied(acl, BOB, "send", "/queue/ops")
        == "SEND to /queue/ops denied: requires one of roles admin, ops"
    )


async def test_claim_condition() -> None:
    acl = Acl.from_toml(
        '[[rule]]\npattern = "/topic/tenant.{t}.**"\nactions = ["subscribe"]\n'
        'claims = { tenant = "{t}" }\n'
    )
    acme = Identity(user="a", claims={"tenant": "acme"})
    multi = Identity(user="m", claims={"tenant": ["acme", "globex"]})
    await acl.check(acme, "subscribe", "/topic/tenant.acme.news")
    await acl.check(multi, "subscribe", "/topic/tenant.globex.x.y")
    assert (
        await denied(acl, acme, "subscribe", "/topic/tenant.globex.news")
        == "SUBSCRIBE to /topic/tenant.globex.news denied: claim tenant does not match"
    )


async def test_user_condition_and_custom_reason() -> None:
    acl = Acl.from_toml(
        '[[rule]]\npattern = "/topic/inbox.{owner}"\nactions = ["subscribe"]\n'
        'user = "{owner}"\nreason = "inbox.{owner} belongs to someone else"\n'
    )
    await acl.check(BOB, "subscribe", "/topic/inbox.bob")
    assert (
        await denied(acl, BOB, "subscribe", "/topic/inbox.alice")
        == "SUBSCRIBE to /topic/inbox.alice denied: inbox.alice belongs to someone else"
    )


async def test_pattern_globs() -> None:
    acl = Acl.from_toml(
        '[[rule]]\npattern = "/topic/a.*.c"\nactions = ["send"]\n'
        '[[rule]]\npattern = "/queue/x/**"\nactions = ["send"]\n'
    )
    await acl.check(BOB, "send", "/topic/a.b.c")
    await acl.check(BOB, "send", "/queue/x/y.z/w")
    for destination in ("/topic/a.b.b.c", "/topic/a..c", "/queue/x/", "/queue/xy"):
        assert (
            await denied(acl, BOB, "send", destination)
            == f"SEND to {destination} denied: no rule allows it"
        )


async def test_placeholder_never_spans_words() -> None:
    acl = Acl.from_toml(
        '[[rule]]\npattern = "/topic/room.{room}"\nactions = ["subscribe"]\nrooms = "{room}"\n'
    )
    alice = Identity(user="alice", rooms=frozenset({"7.x"}))
    assert (
        await denied(acl, alice, "subscribe", "/topic/room.7.x")
        == "SUBSCRIBE to /topic/room.7.x denied: no rule allows it"
    )


async def test_denial_never_echoes_unsafe_characters() -> None:
    message = await denied(Acl([]), BOB, "send", "/topic/a\nsender:x")
    assert message == "SEND to /topic/a?sender:x denied: no rule allows it"


async def test_membership_cache(redis_client: Redis, redis_prefix: str) -> None:
    clock = [100.0]
    lookup = MembershipLookup(redis_client, redis_prefix, cache_ttl=2.0, clock=lambda: clock[0])
    key = "room:9:members"
    assert not await lookup.is_member(key, "bob")
    await redis_client.sadd(f"{redis_prefix}{key}", "bob")
    assert not await lookup.is_member(key, "bob")  # cached "no"
    clock[0] += 2.5
    assert await lookup.is_member(key, "bob")
    await redis_client.srem(f"{redis_prefix}{key}", "bob")
    assert await lookup.is_member(key, "bob")  # cached "yes"
    lookup.invalidate(key=key)
    assert not await lookup.is_member(key, "bob")


async def test_membership_cache_is_bounded(redis_client: Redis, redis_prefix: str) -> None:
    lookup = MembershipLookup(redis_client, redis_prefix, max_entries=3)
    for n in range(10):
        await lookup.is_member(f"room:{n}:members", "bob")
    assert len(lookup._cache) == 3
    lookup.invalidate()
    assert not lookup._cache


# -- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[rule]]\npattern = "/topic/x"\nactions = ["read"]\n', "actions must be"),
        (
            '[[rule]]\npattern = "/topic/x"\nactions = ["send"]\nrole = ["a"]\n',
            "unknown key(s) role",
        ),
        ('[[rule]]\nactions = ["send"]\n', "needs a 'pattern'"),
        ('[[rule]]\npattern = "topic/x"\nactions = ["send"]\n', "must start with '/'"),
        ('[[rule]]\npattern = "/topic/{a}.{a}"\nactions = ["send"]\n', "repeated or reserved"),
        ('[[rule]]\npattern = "/topic/{user}"\nactions = ["send"]\n', "repeated or reserved"),
        ('[[rule]]\npattern = "/topic/{a-b}"\nactions = ["send"]\n', "malformed placeholder"),
        (
            '[[rule]]\npattern = "/topic/{a}"\nactions = ["send"]\nrooms = "{b}"\n',
            "uses {b}, which the pattern does not define",
        ),
        ('[[rule]]\npattern = "/t/x"\nactions = ["send"]\nwildcards = "yes"\n', "true or false"),
        ('[[rule]]\npattern = "/t/x"\nactions = ["send"]\nroles = "admin"\n', "list of strings"),
        (
            '[[rule]]\npattern = "/t/x"\nactions = ["send"]\nclaims = { a = 1 }\n',
            "table of strings",
        ),
        ('[[rule]]\npattern = "/t/x"\nactions = ["send"]\nrooms = 7\n', "'rooms' must be a string"),
        ("version = 2\n", "unsupported version 2"),
        ("rules = []\n", "unknown top-level key(s) rules"),
        ("rule = [1, 2]\n", "rules are [[rule]] tables"),
        (
            '[[rule]]\npattern = "/t/{a}"\nactions = ["send"]\nreason = "{a.__class__}"\n',
            "uses {a.__class__}",
        ),
    ],
)
def test_bad_rules_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        Acl.from_toml(text)


def test_from_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "acl.toml"
    path.write_text("[[rule]\n")
    with pytest.raises(ValueError, match=str(path)):
        Acl.from_file(path)


async def test_default_rules() -> None:
    acl = Acl.default()
    await acl.check(ALICE, "subscribe", "/user/queue/x")
    await acl.check(ALICE, "subscribe", "/topic/room.7")
    await acl.check(ALICE, "send", "/app/rooms/7/messages")
    assert (
        await denied(acl, ALICE, "send", "/topic/room.7")
        == "SEND to /topic/room.7 denied: no rule allows it"
    )
    assert (
        await denied(acl, BOB, "subscribe", "/topic/room.7")
        == "SUBSCRIBE to /topic/room.7 denied: not a member of room 7"
    )


async def test_default_rules_let_everyone_ask_for_presence() -> None:
    acl = Acl.default()
    await acl.check(BOB, "send", "/app/presence/query")
    await acl.check(BOB, "send", "/app/presence/invisible")
    await acl.check(ALICE, "send", "/app/rooms/7/presence")  # a room's: the room's rule
    assert (
        await denied(acl, BOB, "send", "/app/rooms/7/presence")
        == "SEND to /app/rooms/7/presence denied: not a member of room 7"
    )
    assert (
        await denied(acl, BOB, "subscribe", "/app/presence/query")
        == "SUBSCRIBE to /app/presence/query denied: no rule allows it"
    )
