"""The chat's live state read as the workers read it (`chatstate`), against a real Redis and
against what the gateway's own code wrote: one key layout, the same answers."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import redis.asyncio as aioredis

from chatstate import ChatKeys, MembershipCache, PresenceReader, RoomMembers, UnreadReader
from chatstate.keys import lua_key_function
from gateway.chat.layer import ChatLayer
from gateway.chat.membership import Membership
from gateway.presence.store import PresenceStore
from store import Member, Room, SQLiteRoomStore


async def test_the_lua_key_functions_build_the_keys_chatkeys_names(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    cases: list[tuple[str, Callable[..., str], tuple[str, ...], tuple[str, ...]]] = [
        ("room_seq_key", ChatKeys.room_seq, ("room",), ("r-1",)),
        ("read_key", ChatKeys.read, ("room", "user"), ("r-1", "o'brien:x\\y")),
        ("user_key", ChatKeys.presence_user, ("user",), ("a:b",)),
        ("nodes_key", ChatKeys.presence_nodes, (), ()),
    ]
    for name, method, params, values in cases:
        script = "\n".join(
            (
                "local prefix = ARGV[1]",
                lua_key_function(name, method, *params),
                f"return {name}(unpack(ARGV, 2))",
            )
        )
        built = await redis.eval(script, 0, redis_prefix, *values)
        assert built.decode() == method(ChatKeys(redis_prefix), *values)


async def test_membership_cache_tells_a_lost_set_from_an_empty_one(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    store = SQLiteRoomStore(":memory:")
    await store.open()
    try:
        await store.create_room(
            Room(id="g1", kind="group", name="T", lang="", owner="alice", created_at=1),
            [Member("g1", "alice", "owner", 1), Member("g1", "bob", "member", 1)],
        )
        keys = ChatKeys(redis_prefix)
        cache = MembershipCache(redis, keys, roster_prefix=redis_prefix + "acl:")
        members = RoomMembers(cache, store)
        assert await cache.members("g1") is None  # never built: the store answers
        assert await members.members_of("g1") == {"alice", "bob"}
        assert await redis.exists(cache.roster_key("g1")) == 0  # readers never write

        gateway = Membership(redis, keys, store, roster_prefix=redis_prefix + "acl:")
        assert await gateway.members("g1") == ["alice", "bob"]  # the gateway rebuilds it
        assert await redis.exists(f"{redis_prefix}acl:roster:g1") == 1
        await store.remove_member("g1", "bob")
        await gateway.left("g1", "bob")
        assert await cache.members("g1") == ["alice"]
        assert await members.members_of("g1") == {"alice"}
        assert await gateway.members("empty") == []  # cached as empty, not lost
        assert await cache.members("empty") == []
        assert await cache.sizes(["g1", "empty", "lost"]) == [1, 0, None]
        assert await gateway.sizes(["g1", "lost"]) == [1, 0]
        assert await cache.rooms_of("alice") is None
        assert await gateway.rooms_of("alice") == ["g1"]
        assert await cache.rooms_of("alice") == ["g1"]
    finally:
        await store.close()


async def post(chat: ChatLayer, user: str, room: str, text: str) -> int:
    body = orjson.dumps({"client_id": f"{user}-{text}", "text": text})
    result = await chat.handle_send(user, f"/app/rooms/{room}/messages", (), body)
    assert result.message_id is not None
    return result.message_id


async def test_unread_counts_read_as_the_chat_layer_counts_them(
    redis: aioredis.Redis, redis_prefix: str, chat: ChatLayer
) -> None:
    reader = UnreadReader(redis, ChatKeys(redis_prefix))
    first = await post(chat, "alice", "r1", "one")
    await post(chat, "alice", "r1", "two")
    await post(chat, "bob", "r1", "three")
    # bob posted: his pointer is at his post; carol never read nor posted (no pointer)
    [bob, carol] = [(await reader.rows(user, ["r1"]) or [])[0] for user in ("bob", "carol")]
    assert (bob.exact, bob.unread) == (True, 0)
    assert (carol.exact, carol.unread, carol.read_id) == (False, 3, 0)
    assert await reader.unread("carol", "r1") == await chat.unread("carol", "r1") == 3
    [warmed] = await reader.rows("carol", ["r1"]) or []
    assert (warmed.exact, warmed.unread) == (True, 3)  # the chat layer warmed her pointer
    await chat.handle_send(
        "carol", "/app/rooms/r1/read", (), orjson.dumps({"message_id": str(first)})
    )
    assert await reader.unread("carol", "r1") == await chat.unread("carol", "r1") == 2
    assert await reader.last_read("carol", "r1") == first
    assert await reader.last_read("dave", "r1") is None
    assert await reader.unread("carol", "nowhere") == 0
    assert await reader.rows("carol") is None  # no rooms set: the gateway builds it


async def test_who_is_online_read_without_the_nodes_settings(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    keys = ChatKeys(redis_prefix)
    reader = PresenceReader(redis, keys)  # no lease given: the leases say when they end
    node = PresenceStore(redis, key_prefix=redis_prefix, grace_ms=30_000, lease_ms=10_000)
    assert not await reader.is_online("alice")
    await node.sync("node-a", joins=["alice", "bob"], full=True)
    assert await reader.is_online("alice")
    await node.set_invisible("bob", True)
    assert await reader.is_online("bob")  # invisible, but there: no push
    await node.sync("node-a", leaves=["alice"])
    assert not await reader.is_online("alice")  # no live session: away (whatever the grace)
    await redis.zadd(keys.presence_nodes(), {"node-a": 1})  # its lease ran out long ago
    assert not await reader.is_online("bob")  # before any sweep
    [alice] = await reader.query(["alice"])
    assert alice.last_seen is not None
