"""stomp.py (a real third-party client) over the plain TCP listener."""

from __future__ import annotations

import uuid

from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import StompClient, stomp_client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_connect_subscribe_send_receipts(gateway: GatewayProcess) -> None:
    room = unique("room")
    with stomp_client(gateway.stomp_port) as client:
        client.subscribe(f"/topic/{room}", "s1")
        for i in range(5):
            client.send(f"/topic/{room}", f"hello {i}", headers={"x-n": str(i)})
        got = client.messages(5)
    assert [m.body for m in got] == [f"hello {i}" for i in range(5)]
    assert all(m.headers["destination"] == f"/topic/{room}" for m in got)
    assert all(m.headers["subscription"] == "s1" for m in got)
    assert [m.headers["x-n"] for m in got] == ["0", "1", "2", "3", "4"]
    assert all(m.headers["sender"] == "guest" for m in got)


def test_sender_cannot_be_spoofed(gateway: GatewayProcess) -> None:
    room = unique("room")
    with stomp_client(gateway.stomp_port, login="alice", passcode="alice") as client:
        client.subscribe(f"/topic/{room}", "s1")
        client.send(f"/topic/{room}", "hi", headers={"sender": "mallory"})
        message = client.next_message()
    assert message.headers["sender"] == "alice"


def test_queue_client_ack_and_nack_requeue(gateway: GatewayProcess) -> None:
    queue = unique("q")
    with stomp_client(gateway.stomp_port) as producer:
        producer.send(f"/queue/{queue}", "one")
        producer.send(f"/queue/{queue}", "two")
    consumer = StompClient(gateway.stomp_port)
    consumer.connect()
    consumer.subscribe(
        f"/queue/{queue}", "q1", ack="client-individual", headers={"prefetch-count": "1"}
    )
    first = consumer.next_message()
    assert first.body == "one"
    assert consumer.no_message(0.5), "prefetch-count 1: the second waits for the first ack"
    consumer.nack(first.headers["ack"], requeue="true")
    again = consumer.next_message()
    assert again.body == "one"
    assert again.headers["redelivered"] == "true"
    consumer.ack(again.headers["ack"])
    second = consumer.next_message()
    assert second.body == "two"
    consumer.ack(second.headers["ack"])
    consumer.disconnect()


def test_unacked_messages_return_to_the_queue(gateway: GatewayProcess) -> None:
    queue = unique("q")
    with stomp_client(gateway.stomp_port) as producer:
        producer.send(f"/queue/{queue}", "keep me")
    first = StompClient(gateway.stomp_port)
    first.connect()
    first.subscribe(f"/queue/{queue}", "q1", ack="client")
    assert first.next_message().body == "keep me"
    first.disconnect()  # never acked
    with stomp_client(gateway.stomp_port) as second:
        second.subscribe(f"/queue/{queue}", "q2", ack="client")
        again = second.next_message()
        assert again.body == "keep me"
        second.ack(again.headers["ack"])


def test_transaction_commit_and_abort(gateway: GatewayProcess) -> None:
    room = unique("room")
    with stomp_client(gateway.stomp_port) as client:
        client.subscribe(f"/topic/{room}", "s1")
        client.conn.begin("tx1")
        client.conn.send(f"/topic/{room}", "in tx", headers={"transaction": "tx1"})
        assert client.no_message(0.3), "nothing is published before COMMIT"
        client.conn.commit("tx1")
        assert client.next_message().body == "in tx"
        client.conn.begin("tx2")
        client.conn.send(f"/topic/{room}", "aborted", headers={"transaction": "tx2"})
        client.conn.abort("tx2")
        client.send(f"/topic/{room}", "after abort")
        assert client.next_message().body == "after abort"


def test_durable_subscription_collects_while_away(
    gateway: GatewayProcess, gateway_b: GatewayProcess
) -> None:
    room = unique("room")
    durable = {"durable": "true", "auto-delete": "false"}
    away = StompClient(gateway.stomp_port, login="alice", passcode="alice")
    away.connect()
    away.subscribe(f"/topic/{room}", "news", ack="client", headers=durable)
    away.disconnect()
    with stomp_client(gateway.stomp_port) as sender:
        for i in range(3):
            sender.send(f"/topic/{room}", f"while away {i}")
    # back, on the other node
    with stomp_client(gateway_b.stomp_port, login="alice", passcode="alice") as back:
        back.subscribe(f"/topic/{room}", "news", ack="client", headers=durable)
        got = back.messages(3)
        assert [m.body for m in got] == [f"while away {i}" for i in range(3)]
        back.ack(got[-1].headers["ack"])


def test_bad_destination_gets_a_clear_error(gateway: GatewayProcess) -> None:
    client = StompClient(gateway.stomp_port)
    client.connect()
    client.conn.send("/nowhere/x", "x")
    error = client.next_error()
    assert "destination" in error.headers["message"]
    client.listener.disconnected.wait(5)


def test_wrong_passcode_is_refused(gateway: GatewayProcess) -> None:
    client = StompClient(gateway.stomp_port, login="alice", passcode="wrong")
    try:
        client.conn.connect("alice", "wrong", wait=False)
        error = client.next_error()
    finally:
        client.disconnect()
    assert error.headers["message"] == "Bad CONNECT"  # RabbitMQ's text, and its body:
    assert error.body.startswith("Access refused for user 'alice'\n")
