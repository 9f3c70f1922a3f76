"""What the broker would refuse beyond one client is refused first: the pure checks."""

from __future__ import annotations

import datetime

import pytest
from pamqp import commands as spec
from pamqp.common import FieldValue

from gateway.errors import ClientError
from gateway.relay import broker_rules
from gateway.relay.errors import BrokerRuleError
from gateway.relay.headers import HeaderError, properties_from_send
from gateway.relay.planner import (
    ConsumerPlan,
    FanoutPlan,
    parse_subscribe,
    plan_subscribe,
    stream_offset,
)
from gateway.relay.settings import RelaySettings
from gateway.relay.wire_codec import ContentHeaderTooLargeError, encode_publish

SETTINGS = RelaySettings(node_id="node-7")


def _refused(error: BrokerRuleError, message: str, reason: str) -> None:
    assert isinstance(error, ClientError)
    assert (error.message, error.reason) == (message, reason)
    assert error.detail


@pytest.mark.parametrize("expiration", ["0", "1000", str(broker_rules.MAX_EXPIRATION)])
def test_expirations_the_broker_takes(expiration: str) -> None:
    properties = spec.Basic.Properties(expiration=expiration)
    broker_rules.check_publish(properties, 10, max_message_size=100)


@pytest.mark.parametrize("expiration", [str(broker_rules.MAX_EXPIRATION + 1), "9" * 30])
def test_expiration_too_large(expiration: str) -> None:
    properties = spec.Basic.Properties(expiration=expiration)
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_publish(properties, 10, max_message_size=100)
    _refused(info.value, "precondition_failed", "expiration")
    assert "PRECONDITION_FAILED - invalid expiration" in info.value.detail


@pytest.mark.parametrize("name", ["CC", "BCC"])
def test_routing_headers_are_refused(name: str) -> None:
    properties = spec.Basic.Properties(headers={name: "some-queue", "x": "y"})
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_publish(properties, 10, max_message_size=100)
    _refused(info.value, "precondition_failed", "routing_header")
    assert f"'{name}'" in info.value.detail


def test_other_spellings_of_cc_are_plain_headers() -> None:
    properties = spec.Basic.Properties(headers={"cc": "a", "Cc": "b", "bcc": "c"})
    broker_rules.check_publish(properties, 10, max_message_size=100)


def test_message_size() -> None:
    properties = spec.Basic.Properties()
    broker_rules.check_publish(properties, 100, max_message_size=100)
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_publish(properties, 101, max_message_size=100)
    _refused(info.value, "precondition_failed", "message_size")


@pytest.mark.parametrize("age", ["7D", "1Y", "12M", "3h", "30m", "10s", "0s"])
def test_max_age_formats_the_broker_parses(age: str) -> None:
    broker_rules.check_queue_arguments({"x-queue-type": "stream", "x-max-age": age})


@pytest.mark.parametrize("age", ["bogus", "", "10", "-1h", "1 h", "1d", "h", 5])
def test_max_age_that_would_be_a_connection_error(age: FieldValue) -> None:
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_queue_arguments({"x-max-age": age})
    _refused(info.value, "precondition_failed", "queue_argument")


@pytest.mark.parametrize("locator", ["client-local", "min-masters", "random"])
def test_master_locators(locator: str) -> None:
    broker_rules.check_queue_arguments({"x-queue-master-locator": locator})


@pytest.mark.parametrize("locator", ["balanced", "bogus", 5])
def test_master_locator_that_would_be_a_connection_error(locator: FieldValue) -> None:
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_queue_arguments({"x-queue-master-locator": locator})
    _refused(info.value, "precondition_failed", "queue_argument")


def test_a_stream_needs_a_prefetch() -> None:
    broker_rules.check_consume(stream=True, prefetch=1)
    broker_rules.check_consume(stream=False, prefetch=0)
    with pytest.raises(BrokerRuleError) as info:
        broker_rules.check_consume(stream=True, prefetch=0)
    _refused(info.value, "precondition_failed", "stream_prefetch")


def test_stream_nack_is_not_implemented() -> None:
    error = broker_rules.stream_nack("/amq/queue/events")
    _refused(error, "not_implemented", "stream_nack")
    assert error.detail.startswith("NOT_IMPLEMENTED - basic.nack and basic.reject")
    assert "/amq/queue/events" in error.detail


def test_properties_over_one_frame_are_refused_by_the_codec() -> None:
    small = spec.Basic.Properties(headers={"a": "b"})
    encode_publish(1, "", "q", b"body", small, mandatory=False, frame_max=4096)
    large = spec.Basic.Properties(headers={f"h{i}": "x" * 100 for i in range(50)})
    with pytest.raises(ContentHeaderTooLargeError) as info:
        encode_publish(1, "", "q", b"body", large, mandatory=False, frame_max=4096)
    assert info.value.limit == 4096 - 8
    assert info.value.size > info.value.limit
    error = broker_rules.headers_too_large(info.value.size, info.value.limit)
    _refused(error, "Headers too large", "headers_size")


# -- x-stream-offset, as RabbitMQ's plugin parses it -----------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("first", "first"),
        ("last", "last"),
        ("next", "next"),
        (" next ", "next"),
        ("offset:0", 0),
        ("offset:42", 42),
        ("offset=42", 42),
        ("offset:-1", -1),
        ("timestamp:0", datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)),
        ("timestamp:1700000000", datetime.datetime.fromtimestamp(1700000000, datetime.UTC)),
        ("timestamp=1700000000", datetime.datetime.fromtimestamp(1700000000, datetime.UTC)),
        (None, None),
    ],
)
def test_stream_offsets(text: str | None, value: FieldValue) -> None:
    assert stream_offset(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "bogus",
        "",
        "First",
        "offset",
        "offset:",
        "offset:x",
        "offset:1.5",
        "offset: 5",
        "offset:99999999999999999999",
        "timestamp:-1",
        "timestamp:999999999999",
        "timestamp:abc",
        "1h",
        "5",
    ],
)
def test_stream_offsets_the_broker_would_choke_on(text: str) -> None:
    with pytest.raises(BrokerRuleError) as info:
        stream_offset(text)
    _refused(info.value, "Invalid header", "stream_offset")


def test_the_plan_carries_the_stream_offset() -> None:
    destination = "/amq/queue/events"
    dest = parse_subscribe("s", destination, "client")
    plan = plan_subscribe(
        SETTINGS,
        subscription_id="s",
        destination=destination,
        dest=dest,
        ack="client",
        headers={"x-stream-offset": "offset:3", "prefetch-count": "10"},
        user="alice",
    )
    assert isinstance(plan, ConsumerPlan)
    assert plan.consumer_arguments == {"x-stream-offset": 3}
    assert plan.prefetch == 10
    plain = plan_subscribe(
        SETTINGS,
        subscription_id="s",
        destination=destination,
        dest=dest,
        ack="client",
        headers={},
        user="alice",
    )
    assert isinstance(plain, ConsumerPlan)
    assert plain.consumer_arguments == {}


def test_fan_out_subscriptions_ignore_the_stream_offset() -> None:
    dest = parse_subscribe("s", "/topic/a", "auto")
    plan = plan_subscribe(
        SETTINGS,
        subscription_id="s",
        destination="/topic/a",
        dest=dest,
        ack="auto",
        headers={"x-stream-offset": "bogus"},
        user="alice",
    )
    assert isinstance(plan, FanoutPlan)


def test_header_names_fit_an_amqp_table() -> None:
    properties = properties_from_send({"n" * 128: "v"})
    assert properties.headers == {"n" * 128: "v"}
    with pytest.raises(HeaderError, match="longer than 128 bytes"):
        properties_from_send({"n" * 129: "v"})
