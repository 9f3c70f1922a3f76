"""The lean AMQP connection's frame handling, fed bytes directly (no socket).

Frames are built with pamqp, the reference codec; the wire must take them whole, split at
every byte, or many to one read, and turn each broker reply into the right outcome.
"""

from __future__ import annotations

import asyncio
import datetime
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from gateway.relay.wire import (
    AmqpWire,
    ChannelClosedError,
    ConfirmTimeoutError,
    ConnectionLostError,
    Delivery,
    NackedError,
    ReturnedError,
    WireChannel,
)
from gateway.relay.wire_codec import (
    HEAD,
    MethodFrame,
    encode_properties,
    encode_publish,
    read_properties,
)


class FakeTransport:
    """Collects what the wire writes; stands in for the socket only."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def method(channel: int, value: MethodFrame) -> bytes:
    return pamqp_frame.marshal(value, channel)


def content(channel: int, body: bytes, properties: spec.Basic.Properties, chunk: int) -> bytes:
    header = pamqp_frame.marshal(ContentHeader(0, len(body), properties), channel)
    bodies = b"".join(
        pamqp_frame.marshal(ContentBody(body[i : i + chunk]), channel)
        for i in range(0, len(body), chunk)
    )
    return header + bodies


async def wire_with_channel(*, confirms: bool) -> tuple[AmqpWire, FakeTransport, WireChannel]:
    loop = asyncio.get_running_loop()
    wire = AmqpWire(loop)
    transport = FakeTransport()
    wire.connection_made(transport)  # type: ignore[arg-type]
    channel = WireChannel(wire, 1)
    wire._channels[1] = channel
    channel.confirming = confirms
    return wire, transport, channel


def feed_split(wire: AmqpWire, data: bytes, size: int) -> None:
    for i in range(0, len(data), size):
        wire.data_received(data[i : i + size])


@pytest.mark.parametrize("split", [1, 3, 7, 100, 1_000_000])
async def test_delivery_in_any_split(split: int) -> None:
    wire, _, channel = await wire_with_channel(confirms=False)
    got: list[Delivery] = []
    channel._consumers["ctag"] = got.append
    body = bytes(range(256)) * 5  # NULs and all, over three body frames
    props = spec.Basic.Properties(
        content_type="text/plain", delivery_mode=2, headers={"stompgate-room-seq": "7", "x": 1}
    )
    data = method(
        1,
        spec.Basic.Deliver(
            consumer_tag="ctag",
            delivery_tag=42,
            redelivered=True,
            exchange="amq.topic",
            routing_key="room.é",
        ),
    ) + content(1, body, props, 500)
    feed_split(wire, data * 2, split)
    assert len(got) == 2
    first = got[0]
    assert (first.exchange, first.routing_key, first.delivery_tag, first.redelivered) == (
        "amq.topic",
        "room.é",
        42,
        True,
    )
    assert first.body == body
    assert first.properties.content_type == "text/plain"
    assert first.properties.headers == {"stompgate-room-seq": "7", "x": 1}
    assert not wire.is_closed


async def test_empty_body_and_no_properties() -> None:
    wire, _, channel = await wire_with_channel(confirms=False)
    got: list[Delivery] = []
    channel._consumers["c"] = got.append
    wire.data_received(
        method(1, spec.Basic.Deliver("c", 1, False, "ex", "k"))
        + pamqp_frame.marshal(ContentHeader(0, 0, spec.Basic.Properties()), 1)
    )
    assert len(got) == 1
    assert got[0].body == b""
    assert got[0].properties.headers is None


def publish(channel: WireChannel, *, mandatory: bool = False) -> asyncio.Future[None]:
    return channel.publish(
        "amq.topic", "k", b"body", spec.Basic.Properties(), mandatory=mandatory, timeout=5
    )


async def test_confirms_single_multiple_and_nack_in_one_read() -> None:
    wire, transport, channel = await wire_with_channel(confirms=True)
    futures = [publish(channel) for _ in range(5)]
    assert len(transport.written) == 5
    wire.data_received(
        method(1, spec.Basic.Ack(2, False))
        + method(1, spec.Basic.Ack(3, True))  # 1 and 3 (2 is done already)
        + method(1, spec.Basic.Nack(4, False, False))
    )
    await asyncio.sleep(0)
    assert all(f.done() and f.exception() is None for f in futures[:3])
    assert isinstance(futures[3].exception(), NackedError)
    assert not futures[4].done()
    assert channel.inflight == 1
    wire.data_received(method(1, spec.Basic.Ack(5, True)))
    assert futures[4].done()
    assert channel.inflight == 0


async def test_return_fails_the_mandatory_publish() -> None:
    wire, _, channel = await wire_with_channel(confirms=True)
    future = publish(channel, mandatory=True)
    with pytest.raises(RuntimeError, match="nothing in flight"):
        publish(channel, mandatory=True)
    wire.data_received(
        method(1, spec.Basic.Return(312, "NO_ROUTE", "", "missing"))
        + content(1, b"body", spec.Basic.Properties(), 100)
        + method(1, spec.Basic.Ack(1, False))
    )
    error = future.exception()
    assert isinstance(error, ReturnedError)
    assert (error.code, str(error)) == (312, "NO_ROUTE")


async def test_channel_close_fails_its_publishes_and_answers_close_ok() -> None:
    wire, transport, channel = await wire_with_channel(confirms=True)
    future = publish(channel)
    wire.data_received(method(1, spec.Channel.Close(404, "NOT_FOUND - no exchange 'x'", 60, 40)))
    error = future.exception()
    assert isinstance(error, ChannelClosedError)
    assert error.code == 404
    assert "no exchange" in str(error)
    assert transport.written[-1] == method(1, spec.Channel.CloseOk())
    assert channel.is_closed
    with pytest.raises(ChannelClosedError):
        publish(channel)
    assert not wire.is_closed


async def test_connection_close_fails_everything_with_the_brokers_text() -> None:
    wire, transport, channel = await wire_with_channel(confirms=True)
    future = publish(channel)
    watcher = wire.closing
    wire.data_received(
        method(0, spec.Connection.Close(320, "CONNECTION_FORCED - broker forced", 0, 0))
    )
    assert transport.written[-1] == method(0, spec.Connection.CloseOk())
    assert isinstance(future.exception(), ConnectionLostError)
    await asyncio.wait([watcher], timeout=1)
    error = watcher.exception()
    assert isinstance(error, ConnectionLostError)
    assert "broker forced" in str(error)
    assert transport.closed


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (HEAD.pack(1, 0, 4) + b"\x00\x0a\x00\x0a" + b"\x00", "frame-end"),
        (HEAD.pack(9, 0, 0) + b"\xce", "unknown AMQP frame type"),
        (HEAD.pack(3, 1, 10_000_000) + b"x", "frame_max"),
    ],
)
async def test_bad_frames_drop_the_connection(data: bytes, text: str) -> None:
    wire, transport, _ = await wire_with_channel(confirms=True)
    wire.data_received(data)
    assert transport.closed
    error = wire.closing.exception()
    assert isinstance(error, ConnectionLostError)
    assert text in str(error)


async def test_confirm_timeout_and_missed_heartbeats() -> None:
    wire, _, channel = await wire_with_channel(confirms=True)
    future = channel.publish("", "q", b"", spec.Basic.Properties(), timeout=0.0)
    wire._tick()
    assert isinstance(future.exception(), ConfirmTimeoutError)
    wire.heartbeat = 2
    for _ in range(4):
        wire._tick()
    assert not wire.is_closed  # 4 silent seconds = 2 intervals: not yet
    wire._tick()
    error = wire.closing.exception()
    assert isinstance(error, ConnectionLostError)
    assert "heart-beats" in str(error)


def test_publish_encoding_matches_pamqp() -> None:
    props = spec.Basic.Properties(delivery_mode=2, headers={"a": "b"}, content_type="x/y")
    body = b"\x00" * 300
    ours = encode_publish(1, "amq.topic", "room.1", body, props, mandatory=True, frame_max=128)
    reference = pamqp_frame.marshal(
        spec.Basic.Publish(exchange="amq.topic", routing_key="room.1", mandatory=True), 1
    ) + content(1, body, props, 120)
    assert ours == reference
    with pytest.raises(ValueError, match="255 bytes"):
        encode_publish(1, "x" * 256, "", b"", props, mandatory=False, frame_max=4096)


async def test_losing_a_critical_channel_drops_the_connection() -> None:
    wire, _, channel = await wire_with_channel(confirms=False)
    channel.critical = True
    wire.data_received(method(1, spec.Channel.Close(406, "PRECONDITION_FAILED - oops", 0, 0)))
    error = wire.closing.exception()
    assert isinstance(error, ConnectionLostError)
    assert "vital channel" in str(error)
    assert "oops" in str(error)


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)  # what AMQP can carry
_short = _text.filter(lambda t: len(t.encode()) <= 255)


@st.composite
def basic_properties(draw: st.DrawFn) -> spec.Basic.Properties:
    def maybe(strategy: st.SearchStrategy[object]) -> object:
        return draw(st.one_of(st.none(), strategy))

    values = st.one_of(
        _text, st.integers(-(2**31), 2**31 - 1), st.booleans()
    )  # non-strings take pamqp's path
    return spec.Basic.Properties(
        content_type=maybe(_short),  # type: ignore[arg-type]
        content_encoding=maybe(_short),  # type: ignore[arg-type]
        headers=maybe(st.dictionaries(_short, values, max_size=4)),  # type: ignore[arg-type]
        delivery_mode=maybe(st.sampled_from([1, 2])),  # type: ignore[arg-type]
        priority=maybe(st.integers(0, 255)),  # type: ignore[arg-type]
        correlation_id=maybe(_short),  # type: ignore[arg-type]
        reply_to=maybe(_short),  # type: ignore[arg-type]
        expiration=maybe(st.integers(0, 10**9).map(str)),  # type: ignore[arg-type]
        message_id=maybe(_short),  # type: ignore[arg-type]
        timestamp=maybe(  # type: ignore[arg-type]
            st.integers(0, 2**32).map(lambda s: datetime.datetime.fromtimestamp(s, tz=datetime.UTC))
        ),
        message_type=maybe(_short),  # type: ignore[arg-type]
        user_id=maybe(_short),  # type: ignore[arg-type]
        app_id=maybe(_short),  # type: ignore[arg-type]
    )


@given(basic_properties(), st.integers(0, 2**40))
@settings(max_examples=300, deadline=None)
def test_properties_codec_matches_pamqp(props: spec.Basic.Properties, size: int) -> None:
    assert encode_properties(props) == props.marshal()
    payload = pamqp_frame.marshal(ContentHeader(0, size, props), 1)[7:-1]
    body_size, decoded = read_properties(payload)
    reference = ContentHeader()
    reference.unmarshal(payload)
    assert body_size == size
    assert decoded == reference.properties


def test_properties_that_are_not_utf8_never_cost_the_connection() -> None:
    bad = bytes((2,)) + b"\xff\xfe"  # a short string that is not UTF-8
    payload = struct.pack(">HHQH", 60, 0, 0, 0x8000) + bad
    assert read_properties(payload)[1].content_type == "\ufffd\ufffd"
    # With a timestamp it is pamqp's to read, which raises: the message keeps its body.
    with_stamp = struct.pack(">HHQH", 60, 0, 0, 0x8040) + bad + struct.pack(">Q", 1)
    assert read_properties(with_stamp) == (0, spec.Basic.Properties())
