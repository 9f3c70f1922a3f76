"""Presence and typing through real gateway processes (stomp.py over TCP, HTTP), RabbitMQ,
Redis and the SQLite store: no flapping on a reconnect, a killed node's users go offline
within the grace, presence read on another node, invisible mode, typing rate limit and its
ends. Rooms are made through the rooms API: their membership is what presence tells.

Short graces keep the tests short. Times asserted are Redis's own (the events' ``at`` and
``last_seen``) or lower bounds the rules guarantee; waits for events are generous timeouts.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
import redis

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import basic, http_get, post_body, room_name
from tests.support.stomp_client import StompClient, stomp_client

GRACE = 5.0
PRESENCE_ENV = {
    "STOMPGATE_PRESENCE_GRACE": str(GRACE),
    "STOMPGATE_PRESENCE_LEASE": "2",
    "STOMPGATE_PRESENCE_INTERVAL": "0.25",
}


@pytest.fixture
def env(redis_prefix: str) -> dict[str, str]:
    """Every node of a test: short graces, room membership under the test's prefix."""
    return {**PRESENCE_ENV, "STOMPGATE_MEMBERSHIP_PREFIX": redis_prefix}


def make_room(base_url: str, owner: str, *members: str) -> str:
    """A group room made through the rooms API by ``owner`` (dev login) with ``members``;
    its id."""
    request = urllib.request.Request(
        f"{base_url}/api/rooms",
        data=json.dumps({"name": "presence", "members": list(members)}).encode(),
        method="POST",
    )
    request.add_header("Authorization", basic(owner, owner))
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        room: str = json.loads(response.read())["id"]
        return room


def remove_member(base_url: str, room: str, user: str, *, by: str) -> None:
    request = urllib.request.Request(f"{base_url}/api/rooms/{room}/members/{user}", method="DELETE")
    request.add_header("Authorization", basic(by, by))
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def presence_of(client: StompClient, user: str, *, within: float = GRACE + 15) -> dict[str, Any]:
    """The next presence event about ``user`` (others' are skipped)."""
    deadline = time.monotonic() + within
    while True:
        msg = client.next_message(max(0.01, deadline - time.monotonic()))
        if msg.headers.get("event-type") != "presence":
            continue
        event: dict[str, Any] = json.loads(msg.body)
        if event["user"] == user:
            return event


def no_presence_of(client: StompClient, user: str, wait: float) -> bool:
    try:
        presence_of(client, user, within=wait)
    except TimeoutError:
        return True
    return False


def events_of(client: StompClient, kind: str, wait: float) -> list[dict[str, Any]]:
    """Every ``kind`` event that arrives within ``wait`` seconds."""
    found = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = client.next_message(left)
        except TimeoutError:
            break
        if msg.headers.get("event-type") == kind:
            found.append(json.loads(msg.body))
    return found


def http_put(url: str, body: dict[str, Any], auth: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT")
    request.add_header("Authorization", auth)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def statuses(snapshot: dict[str, Any]) -> dict[str, str]:
    return {entry["user"]: entry["status"] for entry in snapshot["users"]}


def wait_online(base_url: str, user: str, *, asker: str = "guest", within: float = 10.0) -> None:
    """Until ``user``'s session is in Redis (a node records its sessions once per interval)."""
    deadline = time.monotonic() + within
    while True:
        status, _, body = http_get(
            f"{base_url}/api/presence?users={user}", auth=basic(asker, asker)
        )
        assert status == 200, body
        if statuses(body)[user] == "online":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user} not online after {within} s")
        time.sleep(0.05)


def test_a_reconnect_within_the_grace_sends_no_offline_event(
    start_gateway: GatewayFactory, redis_keys: redis.Redis, env: dict[str, str]
) -> None:
    gw = start_gateway("gw-flap", **env)
    room = make_room(gw.http_url, "alice", "bob")
    with stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob:
        bob.subscribe(f"/topic/room.{room}", "room")
        with stomp_client(gw.stomp_port, login="alice", passcode="alice"):
            online = presence_of(bob, "alice")
        assert (online["status"], online["room"]) == ("online", room)
        with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:  # a reload
            assert no_presence_of(bob, "alice", GRACE + 2)  # no offline, no second online
            alice.send(f"/app/rooms/{room}/messages", post_body("still here"))
        gone = redis_ms(redis_keys)
        offline = presence_of(bob, "alice")
    assert offline["status"] == "offline"
    assert offline["at"] >= gone + GRACE * 1000 - 50  # not before the grace (Redis's clock)
    assert gone - 1000 <= offline["last_seen"] <= offline["at"] - GRACE * 1000 + 50


def test_a_killed_node_s_users_go_offline_within_the_grace(
    start_gateway: GatewayFactory, redis_keys: redis.Redis, env: dict[str, str]
) -> None:
    a = start_gateway("gw-doomed", **env)
    b = start_gateway("gw-survivor", **env)
    room = make_room(b.http_url, "alice", "bob", "guest")
    with stomp_client(b.stomp_port, login="bob", passcode="bob") as bob:
        bob.subscribe(f"/topic/room.{room}", "room")
        presence_of(bob, "bob")
        alice = StompClient(a.stomp_port, login="alice", passcode="alice")
        alice.connect()
        assert presence_of(bob, "alice")["status"] == "online"
        killed = redis_ms(redis_keys)
        a.kill()  # kill -9: no drain, no hand-over; only its lapsed lease tells
        offline = presence_of(bob, "alice")
        assert no_presence_of(bob, "bob", 1.0)  # bob's node lives: bob stays online
        # Asked while bob is still connected: the API tells true presence, and bob's
        # DISCONNECT would make him offline at his node's next presence step.
        status, _, body = http_get(
            f"{b.http_url}/api/presence?users=alice,bob", auth=basic("bob", "bob")
        )
    assert offline["status"] == "offline"
    assert offline["last_seen"] <= killed  # the dead node's last renewal
    assert offline["at"] >= offline["last_seen"] + GRACE * 1000
    # Within the grace of the crash: a sweep interval late at most, plus slack for a busy
    # machine (the survivor's sweep runs every 0.25 s).
    assert offline["at"] <= killed + GRACE * 1000 + 3000
    assert status == 200
    assert statuses(body) == {"alice": "offline", "bob": "online"}


def test_presence_across_two_nodes_over_http_and_stomp(
    start_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    a = start_gateway("gw-a", **env)
    b = start_gateway("gw-b", **env)
    room = make_room(a.http_url, "alice", "bob", "guest")
    with stomp_client(a.stomp_port, login="alice", passcode="alice"):
        wait_online(b.http_url, "alice")
        url = f"{b.http_url}/api/presence?users=alice&users=guest,nobody"
        status, _, body = http_get(url, auth=basic("bob", "bob"))
        assert status == 200
        assert body["type"] == "presence_snapshot"
        assert statuses(body) == {"alice": "online", "guest": "offline", "nobody": "offline"}
        assert "last_seen" in body["users"][0]
        status, _, body = http_get(
            f"{b.http_url}/api/rooms/{room}/presence", auth=basic("bob", "bob")
        )
        assert status == 200
        assert body["room"] == room
        assert statuses(body) == {"alice": "online", "bob": "offline", "guest": "offline"}

        with stomp_client(b.stomp_port, login="bob", passcode="bob") as bob:
            bob.subscribe("/user/queue/presence", "p")
            wait_online(b.http_url, "bob")
            query = {"users": ["alice", "guest"], "query_id": "q-1"}
            bob.send("/app/presence/query", json.dumps(query))
            answer = bob.next_message()
            assert answer.headers["event-type"] == "presence_snapshot"
            snapshot = json.loads(answer.body)
            assert snapshot["query_id"] == "q-1"
            assert statuses(snapshot) == {"alice": "online", "guest": "offline"}
            bob.send(f"/app/rooms/{room}/presence", "")
            assert statuses(json.loads(bob.next_message().body)) == {
                "alice": "online",
                "bob": "online",
                "guest": "offline",
            }
    status, _, _ = http_get(f"{b.http_url}/api/presence?users=alice", auth=None)
    assert status == 401
    status, _, body = http_get(f"{b.http_url}/api/presence", auth=basic("bob", "bob"))
    assert status == 400
    assert "users" in body["error"]


def test_invisible_users_appear_offline_to_everybody_but_themselves(
    start_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    gw = start_gateway("gw-invisible", **env)
    room = make_room(gw.http_url, "alice", "bob")
    alice_auth = basic("alice", "alice")
    status, own = http_put(f"{gw.http_url}/api/me/presence", {"invisible": True}, alice_auth)
    assert status == 200
    assert own["users"] == [{"user": "alice", "status": "offline", "invisible": True}]
    with stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob:
        bob.subscribe(f"/topic/room.{room}", "room")
        with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
            assert no_presence_of(bob, "alice", 2.0)  # an invisible session tells nobody
            _, _, seen = http_get(
                f"{gw.http_url}/api/presence?users=alice", auth=basic("bob", "bob")
            )
            assert statuses(seen) == {"alice": "offline"}
            wait_online(gw.http_url, "alice", asker="alice")  # she sees her true state
            _, _, mine = http_get(f"{gw.http_url}/api/me/presence", auth=alice_auth)
            assert mine["users"][0]["status"] == "online"
            assert mine["users"][0]["invisible"] is True
            alice.send("/app/presence/invisible", json.dumps({"invisible": False}))
            assert presence_of(bob, "alice")["status"] == "online"
            _, _, seen = http_get(
                f"{gw.http_url}/api/presence?users=alice", auth=basic("bob", "bob")
            )
            assert statuses(seen) == {"alice": "online"}
            alice.send("/app/presence/invisible", json.dumps({"invisible": True}))
            # Appearing offline is a change like any other: at most one per grace.
            assert presence_of(bob, "alice")["status"] == "offline"


def test_typing_is_rate_limited_and_ends_with_a_post_an_unsubscribe_or_a_disconnect(
    start_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    gw = start_gateway("gw-typing", STOMPGATE_TYPING_INTERVAL="1", **env)
    room = room_name()
    typing = f"/app/rooms/{room}/typing"
    true, false = json.dumps({"typing": True}), json.dumps({"typing": False})
    with stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob:
        bob.subscribe(f"/topic/room.{room}", "room")
        with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
            alice.subscribe(f"/topic/room.{room}", "room")
            for _ in range(5):
                alice.send(typing, true)  # a burst: one event
            alice.send(f"/app/rooms/{room}/messages", post_body("done typing"))
            got = [
                (m.headers["event-type"], json.loads(m.body).get("typing")) for m in bob.messages(3)
            ]
            assert got == [("typing", True), ("message", None), ("typing", False)]
            assert bob.no_message(0.3)

            time.sleep(1.1)  # past the interval
            alice.send(typing, true)
            alice.unsubscribe("room")
            assert [e["typing"] for e in events_of(bob, "typing", 1.0)] == [True, False]

            time.sleep(1.1)
            alice.send(typing, true)
            alice.send(typing, false)
            alice.send(typing, false)  # ended already: nothing
            assert [e["typing"] for e in events_of(bob, "typing", 1.0)] == [True, False]

            time.sleep(1.1)
            alice.send(typing, true)
        # alice disconnected
        assert [e["typing"] for e in events_of(bob, "typing", 2.0)] == [True, False]


def test_a_change_reaches_every_room_the_user_belongs_to_and_no_other(
    start_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    a = start_gateway("gw-rooms-a", **env)
    b = start_gateway("gw-rooms-b", **env)
    hers = {make_room(a.http_url, "alice", "bob"), make_room(b.http_url, "bob", "alice", "guest")}
    other = make_room(a.http_url, "bob", "guest")  # alice is not in it
    with stomp_client(b.stomp_port, login="bob", passcode="bob") as bob:
        for n, room in enumerate([*sorted(hers), other]):
            bob.subscribe(f"/topic/room.{room}", f"room-{n}")
        with stomp_client(a.stomp_port, login="alice", passcode="alice"):
            told = [presence_of(bob, "alice"), presence_of(bob, "alice")]
            assert {event["room"] for event in told} == hers
            assert {event["status"] for event in told} == {"online"}
            assert no_presence_of(bob, "alice", 1.0)  # nothing to the room she is not in


def test_removal_from_a_room_ends_the_user_s_typing_there(
    start_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    """The removed user's session that typed is not subscribed to the room (a subscribed one
    is ended by the removal, which would end its typing anyway): only the removal broadcast
    tells its node to end the typing."""
    a = start_gateway("gw-remove-a", **env)
    b = start_gateway("gw-remove-b", **env)
    room = make_room(a.http_url, "alice", "bob", "guest")
    with (
        stomp_client(a.stomp_port, login="bob", passcode="bob") as bob,
        stomp_client(b.stomp_port, login="guest", passcode="guest") as reader,
        stomp_client(b.stomp_port, login="guest", passcode="guest") as typist,
    ):
        bob.subscribe(f"/topic/room.{room}", "room")
        reader.subscribe(f"/topic/room.{room}", "room")
        typist.send(f"/app/rooms/{room}/typing", json.dumps({"typing": True}))
        [started] = [e for e in events_of(bob, "typing", 1.0) if e["user"] == "guest"]
        assert started["typing"] is True
        remove_member(a.http_url, room, "guest", by="alice")
        assert reader.next_error().headers["message"] == "Removed from room"
        ended = [e for e in events_of(bob, "typing", 2.0) if e["user"] == "guest"]
        assert [e["typing"] for e in ended] == [False]
        assert typist.errors() == []  # not subscribed to the room: still connected
