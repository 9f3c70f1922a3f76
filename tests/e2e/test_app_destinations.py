"""/app destinations through a real gateway process with stomp.py over TCP."""

from __future__ import annotations

import contextlib
import json

import redis
import stomp
import stomp.exception

from chatstate.keys import ChatKeys
from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import post_body, room_name
from tests.support.security import StompPeer
from tests.support.stomp_client import StompClient, stomp_client


def _topic(room: str) -> str:
    return f"/topic/room.{room}"


def test_post_is_stamped_ided_and_published_once(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-app")
    room = room_name()
    with (
        stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob,
        stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice,
    ):
        bob.subscribe(_topic(room), "s")
        alice.send(f"/app/rooms/{room}/messages", post_body("hello", "c-1", lang="en"))
        msg = bob.next_message()
        assert bob.no_message(0.3)  # published once
    assert msg.headers["event-type"] == "message"
    assert msg.headers["content-type"] == "application/json"
    assert msg.headers["sender"] == "alice"
    event = json.loads(msg.body)
    assert set(event) == {
        "v",
        "type",
        "id",
        "room",
        "sender",
        "client_id",
        "text",
        "sent_at",
        "lang",
    }
    assert event["type"] == "message"
    assert event["sender"] == "alice"
    assert event["room"] == room
    assert event["client_id"] == "c-1"
    assert event["text"] == "hello"
    assert isinstance(event["id"], str)
    assert event["id"].isdigit()
    assert 2**32 < int(event["id"]) < 2**63  # a 64-bit Snowflake, as a decimal string
    assert msg.headers["stompgate-message-id"] == event["id"]


def test_retry_with_same_client_id_is_not_published_again(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-retry")
    room = room_name()
    with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
        alice.subscribe(_topic(room), "s")
        body = post_body("once", "same-id")
        alice.send(f"/app/rooms/{room}/messages", body)
        alice.send(f"/app/rooms/{room}/messages", body)  # receipted again, not republished
        assert json.loads(alice.next_message().body)["client_id"] == "same-id"
        assert alice.no_message(0.5)


def test_the_client_id_is_remembered_for_the_post_idempotency_ttl(
    start_gateway: GatewayFactory, redis_keys: redis.Redis, redis_prefix: str
) -> None:
    gw = start_gateway("gw-idem-ttl", "--post-idempotency-ttl", "3600")
    with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
        receipt = alice.send(f"/app/rooms/{room_name()}/messages", post_body("x", "ttl-id"))
    key = ChatKeys(redis_prefix).client("alice", "ttl-id")
    assert redis_keys.get(key) == receipt["stompgate-message-id"].encode()  # confirmed
    # Neither the pending window (60 s) nor the default (86,400 s): the setting's.
    assert 60 < redis_keys.ttl(key) <= 3600


def test_a_post_s_receipt_carries_its_id_and_a_retry_the_original(
    start_gateway: GatewayFactory,
) -> None:
    gw = start_gateway("gw-receipt-id")
    room = room_name()
    destination = f"/app/rooms/{room}/messages"
    with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
        alice.subscribe(_topic(room), "s")
        first = alice.send(destination, post_body("first", "same-id"))
        event = json.loads(alice.next_message().body)
        assert first["stompgate-message-id"] == event["id"]
        assert "stompgate-duplicate" not in first
        retry = alice.send(destination, post_body("first", "same-id"))  # a lost receipt's retry
        assert retry["stompgate-message-id"] == event["id"]
        assert retry["stompgate-duplicate"] == "true"
        other = alice.send(destination, post_body("second", "other-id"))
        assert int(other["stompgate-message-id"]) > int(event["id"])
        assert json.loads(alice.next_message().body)["id"] == other["stompgate-message-id"]
        # Other SENDs' receipts carry nothing more.
        read = alice.send(f"/app/rooms/{room}/read", json.dumps({"message_id": event["id"]}))
        topic = alice.send("/topic/elsewhere", "x")
        assert "stompgate-message-id" not in read
        assert "stompgate-message-id" not in topic


async def test_a_post_s_receipt_carries_its_id_on_the_wire(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-receipt-raw")
    destination = f"/app/rooms/{room_name()}/messages"
    async with StompPeer.tcp(gw.stomp_port) as peer:
        connected = await peer.connect(headers=[("login", "alice"), ("passcode", "alice")])
        assert connected.command == "CONNECTED", connected
        ids = []
        for receipt in ("p-1", "p-2"):
            await peer.send_frame(
                "SEND", {"destination": destination, "receipt": receipt}, post_body("x", "c-9")
            )
            [found] = await peer.receipt(receipt)
            ids.append(found.headers["stompgate-message-id"])
            assert found.all_headers[0] == ("receipt-id", receipt)
        assert ids[0] == ids[1]
        assert ids[0].isdigit()
        assert found.headers["stompgate-duplicate"] == "true"


def _error_for(port: int, destination: str, body: str) -> tuple[str, str, str]:
    """The ERROR a SEND gets: its short ``message``, its body's first line, its body."""
    client = StompClient(port, login="alice", passcode="alice")
    client.connect()
    try:
        client.conn.send(destination, body, headers={"receipt": "bad"})
        error = client.next_error()
        # The gateway closes the connection after an ERROR.
        assert client.listener.disconnected.wait(5)
        return error.headers.get("message", ""), error.body.split("\n", 1)[0], error.body
    finally:
        with contextlib.suppress(stomp.exception.StompException):
            client.disconnect()


def test_invalid_bodies_get_an_error_naming_field_and_rule(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-invalid")
    dest = f"/app/rooms/{room_name()}/messages"
    cases = {
        json.dumps({"client_id": "x1", "text": ""}): "`text` must have length >= 1",
        json.dumps({"text": "hi"}): "missing required field `client_id`",
        "not json": "body is not valid JSON",
        json.dumps({"client_id": "a b", "text": "x"}): "`client_id` must be 1-64 characters",
        json.dumps({"client_id": "x2", "text": "x", "lang": 5}): "`lang`",
    }
    for body, expected in cases.items():
        short, message, detail = _error_for(gw.stomp_port, dest, body)
        assert short == "Invalid message"
        assert message.startswith("invalid chat.post:"), message
        assert expected in message, (expected, message)
        assert "schemas/chat.post.v1.json" in detail
    room = "r" * 65
    short, message, _ = _error_for(gw.stomp_port, f"/app/rooms/{room}/messages", post_body("x"))
    assert (short, message) == ("Invalid destination", f"invalid room id '{room}'")
    short, message, _ = _error_for(gw.stomp_port, "/app/rooms/x/nope", post_body("x"))
    assert (short, message) == (
        "Unknown destination",
        "unknown application destination '/app/rooms/x/nope'",
    )


def test_client_supplied_sender_is_rejected_or_ignored(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-sender")
    room = room_name()
    dest = f"/app/rooms/{room}/messages"
    # In the body: an unknown field, rejected by the schema.
    body = json.dumps({"client_id": "s1", "text": "x", "sender": "bob"})
    _, message, _ = _error_for(gw.stomp_port, dest, body)
    assert "sender" in message
    # As a header: ignored, the gateway stamps the authenticated user.
    with stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice:
        alice.subscribe(_topic(room), "s")
        alice.send(dest, post_body("hi", "s2"), headers={"sender": "bob"})
        msg = alice.next_message()
    assert msg.headers["sender"] == "alice"
    assert json.loads(msg.body)["sender"] == "alice"


def test_mark_read_publishes_a_receipt_and_typing_an_event(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-read")
    room = room_name()
    with (
        stomp_client(gw.stomp_port, login="alice", passcode="alice") as alice,
        stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob,
    ):
        alice.subscribe(_topic(room), "s")
        alice.send(f"/app/rooms/{room}/messages", post_body("read me", "m1"))
        message_id = json.loads(alice.next_message().body)["id"]
        bob.send(f"/app/rooms/{room}/read", json.dumps({"message_id": message_id}))
        receipt = alice.next_message()
        assert receipt.headers["event-type"] == "receipt"
        event = json.loads(receipt.body)
        assert event["type"] == "receipt"
        assert event["user"] == "bob"
        assert event["room"] == room
        assert event["message_id"] == message_id
        # The pointer only moves forward: marking the same id again publishes nothing.
        bob.send(f"/app/rooms/{room}/read", json.dumps({"message_id": message_id}))
        assert alice.no_message(0.3)

        bob.send(f"/app/rooms/{room}/typing", json.dumps({"typing": True}))
        typing = alice.next_message()
        assert typing.headers["event-type"] == "typing"
        event = json.loads(typing.body)
        assert (event["type"], event["user"], event["typing"]) == ("typing", "bob", True)
