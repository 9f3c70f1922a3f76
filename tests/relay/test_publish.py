"""SEND: confirms, header mapping to AMQP properties, clear errors."""

from __future__ import annotations

import asyncio
import datetime

import aiormq
import pytest
from aiormq.abc import DeliveredMessage

from gateway.relay import DestinationError, PublishError, Relay, RelaySettings, SubscribeError
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, eventually, queue_depth
from tests.support import rabbit


async def test_publish_returns_after_confirm(make_relay: RelayFactory, fresh_vhost: str) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    for i in range(50):
        await relay.publish(sink, "/queue/confirmed", [], f"{i}".encode())
        # The broker has it by the time publish returns.
        assert await queue_depth(fresh_vhost, "confirmed") == i + 1 if i % 10 == 0 else True
    assert await queue_depth(fresh_vhost, "confirmed") == 50


async def test_missing_amq_queue_is_a_publish_error(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    with pytest.raises(PublishError) as info:
        await relay.publish(sink, "/amq/queue/missing", [], b"x")
    assert str(info.value) == "no such queue 'missing'"
    # The channel is fine afterwards: other publishes still work.
    await relay.publish(sink, "/queue/ok", [], b"y")
    await relay.publish(sink, "/amq/queue/ok", [], b"z")


async def test_missing_exchange_is_a_publish_error(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    with pytest.raises(PublishError) as info:
        await relay.publish(sink, "/exchange/nope/k", [], b"x")
    assert str(info.value).startswith("NOT_FOUND - no exchange 'nope' in vhost ")
    await relay.publish(sink, "/exchange/amq.direct/k", [], b"fine, just unroutable")


async def test_nack_is_a_publish_error(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    headers = [("x-max-length", "0"), ("x-overflow", "reject-publish")]
    with pytest.raises(PublishError, match=r"refused the message \(nack\)"):
        await relay.publish(sink, "/queue/full", headers, b"x")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("priority", "high")], "header 'priority' must be an integer: got 'high'"),
        ([("priority", "256")], "header 'priority' must be between 0 and 255: got 256"),
        ([("expiration", "soon")], "header 'expiration' must be a number of milliseconds"),
        ([("timestamp", "x")], "header 'timestamp' must be an integer: got 'x'"),
        ([("content-type", "x" * 256)], "header 'content-type' is longer than 255 bytes"),
        ([("x-max-length", "many")], "header 'x-max-length' must be an integer: got 'many'"),
    ],
)
async def test_bad_header_values(
    make_relay: RelayFactory, headers: list[tuple[str, str]], message: str
) -> None:
    relay = await make_relay()
    with pytest.raises(PublishError, match=message):
        await relay.publish(RecordingSink("s"), "/queue/hv", headers, b"")


async def test_bad_destinations(make_relay: RelayFactory) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    with pytest.raises(DestinationError, match="must start with"):
        await relay.publish(sink, "/foo", [], b"")
    with pytest.raises(DestinationError, match="only be used in a reply-to"):
        await relay.publish(sink, "/temp-queue/x", [], b"")
    with pytest.raises(DestinationError, match="only allowed when subscribing"):
        await relay.publish(sink, "/topic/a.*", [], b"")


async def test_headers_become_amqp_properties(make_relay: RelayFactory, fresh_vhost: str) -> None:
    """What an AMQP consumer (a worker) sees for a SEND, and what comes back as MESSAGE."""
    relay = await make_relay()
    connection = await aiormq.connect(rabbit.amqp_url(fresh_vhost))
    got: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
    try:
        channel = await connection.channel()
        await channel.queue_declare("props", durable=True)

        async def on_message(message: DeliveredMessage) -> None:
            await got.put(message)

        await channel.basic_consume("props", on_message, no_ack=True)
        headers = [
            ("content-type", "application/json"),
            ("content-encoding", "utf-8"),
            ("correlation-id", "c-1"),
            ("reply-to", "/queue/answers"),
            ("expiration", "60000"),
            ("priority", "5"),
            ("amqp-message-id", "m-1"),
            ("timestamp", "1700000000"),
            ("type", "chat.message"),
            ("app-id", "web"),
            ("user-id", "mallory"),
            ("receipt", "r-1"),
            ("transaction", "tx-1"),
            ("content-length", "2"),
            ("message-id", "client-chosen"),
            ("destination", "/queue/elsewhere"),
            ("event-type", "message"),
            ("x-custom", "first"),
            ("x-custom", "second"),
        ]
        await relay.publish(RecordingSink("s"), "/queue/props", headers, b"{}")
        message = await asyncio.wait_for(got.get(), 5)
        props = message.header.properties
        assert props.content_type == "application/json"
        assert props.content_encoding == "utf-8"
        assert props.correlation_id == "c-1"
        assert props.reply_to == "/queue/answers"
        assert props.expiration == "60000"
        assert props.priority == 5
        assert props.message_id == "m-1"
        assert props.timestamp == datetime.datetime.fromtimestamp(1700000000, tz=datetime.UTC)
        assert props.message_type == "chat.message"
        assert props.app_id == "web"
        assert props.user_id is None
        assert props.delivery_mode == 2
        assert props.headers == {"event-type": "message", "x-custom": "first"}
        assert message.body == b"{}"

        # persistent:false → transient.
        await relay.publish(RecordingSink("s"), "/queue/props", [("persistent", "false")], b"t")
        transient = await asyncio.wait_for(got.get(), 5)
        assert transient.header.properties.delivery_mode == 1
    finally:
        await connection.close()

    # And the way back: an AMQP publish with properties → MESSAGE headers.
    sink = RecordingSink("reader")
    await relay.subscribe(sink, "s", "/queue/back", "auto", {})
    connection = await aiormq.connect(rabbit.amqp_url(fresh_vhost))
    try:
        channel = await connection.channel()
        await channel.basic_publish(
            b"raw",
            routing_key="back",
            properties=aiormq.spec.Basic.Properties(
                content_type="text/plain",
                delivery_mode=2,
                priority=3,
                correlation_id="c",
                reply_to="amq.gen-abc",
                expiration="1000000",
                message_id="mid",
                timestamp=datetime.datetime.fromtimestamp(1600000000, tz=datetime.UTC),
                message_type="t",
                app_id="a",
                headers={"s": "str", "i": 7, "b": True, "nested": {"x": 1}, "subscription": "no"},
            ),
        )
    finally:
        await connection.close()
    (delivery,) = await sink.wait_for(1)
    assert delivery.destination == "/queue/back"
    assert list(delivery.message.headers) == [
        ("redelivered", "false"),
        ("content-type", "text/plain"),
        ("persistent", "true"),
        ("priority", "3"),
        ("correlation-id", "c"),
        ("reply-to", "/reply-queue/amq.gen-abc"),
        ("expiration", "1000000"),
        ("amqp-message-id", "mid"),
        ("timestamp", "1600000000"),
        ("type", "t"),
        ("app-id", "a"),
        # RabbitMQ keeps header tables sorted by key.
        ("b", "true"),
        ("i", "7"),
        ("s", "str"),
    ]


async def test_not_ready_when_broker_unreachable() -> None:
    settings = RelaySettings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/",
        reconnect_min_delay=0.1,
        reconnect_max_delay=0.2,
        connect_timeout=2,
    )
    relay = Relay(settings)
    await relay.start()
    try:
        assert not relay.ready
        sink = RecordingSink("s")
        with pytest.raises(PublishError, match="broker unavailable"):
            await relay.publish(sink, "/topic/a", [], b"")
        with pytest.raises(SubscribeError, match="broker unavailable"):
            await relay.subscribe(sink, "1", "/topic/a", "auto", {})
        assert not await relay.wait_ready(0.3)
        await relay.detach(sink)
    finally:
        await relay.close()


async def test_publish_with_on_confirm_returns_before_the_confirm(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    outcomes: list[tuple[PublishError | None, float]] = []
    for i in range(20):
        await relay.publish(
            sink,
            "/queue/pipelined",
            [],
            f"{i}".encode(),
            on_confirm=lambda error, seconds: outcomes.append((error, seconds)),
        )
    assert len(outcomes) < 20  # returned before (most of) the confirms
    await eventually(lambda: len(outcomes), lambda n: n >= 20, within=5, every=0.01)
    assert [error for error, _ in outcomes] == [None] * 20
    assert all(0 <= seconds < 5 for _, seconds in outcomes)
    assert await queue_depth(fresh_vhost, "pipelined") == 20
    # A nack reaches the callback, not the caller.
    await relay.publish(
        sink,
        "/queue/full",
        [("x-max-length", "0"), ("x-overflow", "reject-publish")],
        b"x",
        on_confirm=lambda error, seconds: outcomes.append((error, seconds)),
    )
    await eventually(lambda: len(outcomes), lambda n: n >= 21, within=5, every=0.01)
    assert "refused the message (nack)" in str(outcomes[-1][0])


async def test_exchange_deleted_after_the_check_fails_the_confirm(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    relay = await make_relay()
    sink = RecordingSink("s")
    rabbit.mgmt(
        "PUT", f"/exchanges/{rabbit.quote(fresh_vhost)}/brief", {"type": "topic", "durable": False}
    )
    await relay.publish(sink, "/exchange/brief/k", [], b"checked and cached")
    rabbit.mgmt("DELETE", f"/exchanges/{rabbit.quote(fresh_vhost)}/brief")
    outcome: asyncio.Future[PublishError | None] = asyncio.get_running_loop().create_future()
    await relay.publish(
        sink, "/exchange/brief/k", [], b"x", on_confirm=lambda e, _: outcome.set_result(e)
    )
    error = await asyncio.wait_for(outcome, 5)
    assert error is not None
    assert "NOT_FOUND" in str(error)
    # The relay forgot the exchange: the next SEND is refused before anything is written.
    with pytest.raises(PublishError, match="NOT_FOUND - no exchange 'brief' in vhost "):
        await relay.publish(sink, "/exchange/brief/k", [], b"y")
    await relay.publish(sink, "/queue/after", [], b"other channels are fine")
