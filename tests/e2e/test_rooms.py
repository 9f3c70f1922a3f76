"""Rooms, membership and read receipts end to end: two JWT-mode gateway processes sharing one
vhost, one Redis prefix and one SQLite store (with the persist worker), the rooms API over
HTTP and raw STOMP sessions over TCP.

The default ACL rules apply: nobody's token lists the rooms, so every SUBSCRIBE and /app SEND
is allowed by the room's roster alone (the rooms API's membership, rebuilt from the store
when Redis has lost it). The per-node membership answer cache is long (30 s) here, so a
refusal right after a removal proves the broadcast invalidated it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from tests.e2e.procs import WorkerProcess, wait_stored
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import (
    Frame,
    StompPeer,
    hs_token,
    jwt_env,
    next_message,
    post_typing,
    subscribe,
)

Nodes = tuple[GatewayProcess, GatewayProcess]


def start_pair(
    amqp_url: str, env: dict[str, str], log_dir: Path, *extra: str, tag: str = ""
) -> Nodes:
    nodes = tuple(
        GatewayProcess(
            amqp_url=amqp_url, node_id=f"rooms-{n}{tag}", env=env, auth="jwt", extra_args=extra
        )
        for n in ("a", "b")
    )
    for node in nodes:
        node.start(log_dir)
    return nodes[0], nodes[1]


@pytest.fixture
def rooms_env(chat_env: dict[str, str], redis_prefix: str) -> dict[str, str]:
    """Presence off: its events on the room topics (tests/e2e/test_presence.py covers them)
    would interleave with the events these tests read in order."""
    env = jwt_env(redis_prefix, STOMPGATE_MEMBERSHIP_CACHE_TTL="30", STOMPGATE_PRESENCE="false")
    return {**chat_env, **env}


@pytest.fixture
def pair(
    e2e_vhost_url: str,
    rooms_env: dict[str, str],
    log_dir: Path,
    redis_keys: redis.Redis,
) -> Iterator[Nodes]:
    a, b = start_pair(e2e_vhost_url, rooms_env, log_dir, "--room-max-members", "4")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


class Api:
    """The rooms API of one node, as one user."""

    def __init__(self, node: GatewayProcess, user: str, roles: list[str] | None = None) -> None:
        self.base = node.http_url
        self.headers = {"Authorization": "Bearer " + hs_token(user, roles=roles or ["member"])}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
        """(status, reason phrase, JSON body or None)."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base + path, json=body, headers=self.headers) as reply,
        ):
            text = await reply.text()
            return reply.status, reply.reason or "", json.loads(text) if text else None


async def connected(node: GatewayProcess, user: str) -> StompPeer:
    peer_cm = StompPeer.tcp(node.stomp_port)
    peer = await peer_cm.__aenter__()
    _OPEN.append(peer_cm)
    frame = await peer.connect(hs_token(user))
    assert frame.command == "CONNECTED", frame
    return peer


_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_peers() -> Any:
    yield
    while _OPEN:
        await _OPEN.pop().__aexit__(None, None, None)


async def send(
    peer: StompPeer, destination: str, body: dict[str, Any], receipt: str
) -> list[Frame]:
    """SEND with a receipt; the frames up to the RECEIPT (a MESSAGE may come before it)."""
    await peer.send_frame(
        "SEND", {"destination": destination, "receipt": receipt}, json.dumps(body)
    )
    return await peer.receipt(receipt)


async def messages_until(
    peer: StompPeer, event_type: str, seen: list[Frame] | None = None, within: float = 10.0
) -> Frame:
    """The next MESSAGE with ``event-type: event_type`` (others are skipped), looking at the
    frames already ``seen`` first."""
    for found in seen or []:
        if found.command == "MESSAGE" and found.headers.get("event-type") == event_type:
            seen.remove(found)  # type: ignore[union-attr]
            return found
    async with asyncio.timeout(within):
        while True:
            found = await next_message(peer)
            if found.headers.get("event-type") == event_type:
                return found


async def test_membership_rules_events_and_removal_on_every_node(pair: Nodes) -> None:
    a, b = pair
    alice, bob, _carol = Api(a, "alice"), Api(b, "bob"), Api(a, "carol")
    status, _, room = await alice.call(
        "POST", "/api/rooms", {"name": "Team", "members": ["bob", "carol"], "lang": "en"}
    )
    assert status == 201, room
    assert (room["kind"], room["owner"], room["members"]) == (
        "group",
        "alice",
        sorted(room["members"]),
    )
    assert set(room["members"]) == {"alice", "bob", "carol"}
    rid = room["id"]
    topic = f"/topic/room.{rid}"

    # The group limit (4 here) and the management rule.
    status, reason, body = await alice.call(
        "POST", "/api/rooms", {"name": "Big", "members": ["u1", "u2", "u3", "u4"]}
    )
    assert (status, reason) == (409, "room is full"), body
    status, reason, body = await bob.call("POST", f"/api/rooms/{rid}/members", {"users": ["dave"]})
    assert (status, reason) == (403, "not allowed")
    assert body["detail"].startswith("not allowed to add members\n")
    status, reason, body = await bob.call("DELETE", f"/api/rooms/{rid}/members/carol")
    assert (status, reason) == (403, "not allowed")
    assert body["detail"].startswith("not allowed to remove members\n")
    admin = Api(b, "root", roles=["admin"])
    status, _, room = await admin.call("POST", f"/api/rooms/{rid}/members", {"users": ["dave"]})
    assert status == 200
    assert "dave" in room["members"]
    status, reason, _ = await admin.call("POST", f"/api/rooms/{rid}/members", {"users": ["erin"]})
    assert (status, reason) == (409, "room is full")
    status, reason, body = await Api(a, "nobody").call("GET", f"/api/rooms/{rid}/members")
    assert (status, reason) == (403, "not allowed")
    assert body["detail"].startswith("not allowed to see this room\n")
    async with aiohttp.ClientSession() as session, session.get(a.http_url + "/api/rooms") as reply:
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")

    # bob on both nodes (two devices), carol on node A: all subscribed through the roster.
    bob_a, bob_b, carol_a = (
        await connected(a, "bob"),
        await connected(b, "bob"),
        await connected(a, "carol"),
    )
    for peer in (bob_a, bob_b, carol_a):
        await subscribe(peer, topic)
    status, _, _ = await Api(a, "dave").call("POST", f"/api/rooms/{rid}/leave")
    assert status == 204
    left = json.loads((await messages_until(carol_a, "member-left")).body)
    assert (left["user"], left["reason"], left["by"]) == ("dave", "left", "dave")

    started = time.monotonic()
    status, _, _ = await alice.call("DELETE", f"/api/rooms/{rid}/members/bob")
    assert status == 204
    errors = await asyncio.gather(bob_a.expect_error(), bob_b.expect_error())
    # On both nodes, within a second on this machine (no test asserts machine speed: the
    # bound here only catches a broadcast that never came and the session timed out instead).
    assert time.monotonic() - started < 10.0
    for error in errors:
        assert error.message == "Removed from room"
        assert error.body.startswith(f"removed from room {rid}\n")
        assert "no longer a member" in error.body
    removed = json.loads((await messages_until(carol_a, "member-left")).body)
    assert (removed["user"], removed["reason"], removed["by"]) == ("bob", "removed", "alice")
    # carol goes on; bob is refused at once, on either node (his cached "yes" is gone)
    assert (await next_message(carol_a, await post_typing(carol_a, rid))).headers[
        "sender"
    ] == "carol"
    for node in (a, b):
        again = await connected(node, "bob")
        await again.send_frame("SUBSCRIBE", {"id": "s", "destination": topic, "receipt": "r"})
        refused = await again.expect_error()
        assert refused.message == "access_refused"
        assert refused.body.startswith(f"SUBSCRIBE to {topic} denied: not a member of room {rid}")
    status, _, mine = await bob.call("GET", "/api/rooms")
    assert status == 200
    assert mine == {"v": 1, "rooms": []}
    status, reason, _ = await alice.call("DELETE", f"/api/rooms/{rid}/members/bob")
    assert (status, reason) == (404, "not a member")


async def unread_event(peer: StompPeer, seen: list[Frame] | None = None) -> dict[str, Any]:
    frame = await messages_until(peer, "unread", seen)
    assert frame.headers["destination"] == "/user/queue/unread"
    event: dict[str, Any] = json.loads(frame.body)
    return event


async def test_unread_counts_reach_every_device_and_survive_a_restart_of_everything(
    e2e_vhost_url: str,
    rooms_env: dict[str, str],
    log_dir: Path,
    redis_keys: redis.Redis,
    redis_prefix: str,
    store_path: Path,
    worker: WorkerProcess,
) -> None:
    a, b = start_pair(e2e_vhost_url, rooms_env, log_dir, "--chat-recent-limit", "3")
    try:
        # One id per pair, whoever opens it.
        status, _, dm = await Api(b, "bob").call("POST", "/api/rooms/direct", {"user": "alice"})
        assert status == 200
        assert dm["kind"] == "direct"
        status, _, same = await Api(a, "alice").call("POST", "/api/rooms/direct", {"user": "bob"})
        assert same["id"] == dm["id"]
        assert same["members"] == ["alice", "bob"]
        rid = dm["id"]

        # bob's two devices, on two nodes: the snapshot first, then live counts.
        phone, laptop = await connected(a, "bob"), await connected(b, "bob")
        for peer in (phone, laptop):
            await subscribe(peer, "/user/queue/unread", "u")
            first = await next_message(peer)
            assert first.headers["event-type"] == "unread-snapshot"
            snapshot = json.loads(first.body)
            assert snapshot["rooms"] == [{"room": rid, "unread": 0, "read_id": "0"}]

        alice = await connected(a, "alice")
        await subscribe(alice, f"/topic/room.{rid}")
        ids = []
        for n in range(6):
            body = {"client_id": f"m{n}", "text": "hi"}
            seen = await send(alice, f"/app/rooms/{rid}/messages", body, f"p{n}")
            ids.append(json.loads((await messages_until(alice, "message", seen)).body)["id"])
        wait_stored(store_path, 6, room=rid)

        # A pointer older than the recent cache (it keeps 3): counted from the store.
        got = {
            id(laptop): await send(laptop, f"/app/rooms/{rid}/read", {"message_id": ids[0]}, "r1")
        }
        for peer in (phone, laptop):
            event = await unread_event(peer, got.get(id(peer)))
            assert (event["room"], event["unread"], event["read_id"]) == (rid, 5, ids[0])
        got = {id(phone): await send(phone, f"/app/rooms/{rid}/read", {"message_id": ids[3]}, "r2")}
        for peer in (phone, laptop):
            assert (await unread_event(peer, got.get(id(peer))))["unread"] == 2

        bob = Api(b, "bob")
        status, _, counts = await bob.call("GET", "/api/unread")
        assert counts["rooms"] == [{"room": rid, "unread": 2, "read_id": ids[3], "last_id": ids[5]}]
        status, _, mine = await bob.call("GET", "/api/rooms")
        [entry] = mine["rooms"]
        assert (entry["id"], entry["unread"], entry["read_id"]) == (rid, 2, ids[3])
        assert entry["last_message"]["id"] == ids[5]
        status, _, page = await bob.call("GET", f"/api/rooms/{rid}/messages")
        assert page["read_pointers"] == {"alice": ids[5], "bob": ids[3]}  # seen by
        status, _, members = await bob.call("GET", f"/api/rooms/{rid}/members")
        assert {m["user"]: m.get("read_id") for m in members["members"]} == {
            "alice": ids[5],
            "bob": ids[3],
        }
        for cm in reversed(_OPEN):
            await cm.__aexit__(None, None, None)
        _OPEN.clear()
    finally:
        a.stop()
        b.stop()

    # A restart of everything: the nodes and Redis (nothing of the prefix is left).
    worker.stop()
    keys = list(redis_keys.scan_iter(match=f"{redis_prefix}*"))
    redis_keys.delete(*keys)
    a, b = start_pair(e2e_vhost_url, rooms_env, log_dir, "--chat-recent-limit", "3", tag="-2")
    try:
        status, _, counts = await Api(b, "bob").call("GET", "/api/unread")
        assert counts["rooms"] == [{"room": rid, "unread": 2, "read_id": ids[3]}]
        status, _, counts = await Api(a, "alice").call("GET", "/api/unread")
        assert counts["rooms"][0]["unread"] == 0  # her own messages
        laptop = await connected(b, "bob")  # the roster comes back from the store
        await subscribe(laptop, f"/topic/room.{rid}")
        await subscribe(laptop, "/user/queue/unread", "u")
        assert json.loads((await next_message(laptop)).body)["rooms"][0]["unread"] == 2
        seen_frames = await send(laptop, f"/app/rooms/{rid}/read", {"message_id": ids[4]}, "r3")
        assert (await unread_event(laptop, seen_frames))["unread"] == 1
    finally:
        a.stop()
        b.stop()
