"""No client can close a connection or channel the node shares (issue 13, point 2).

A real node in JWT mode with an ACL. In every test a canary runs on the same node: a service
publishes numbered messages, one at a time, to a topic (delivered through the node's fan-out
queue, on its wire connection) and to a queue (consumed with client acks on its consume
connection), and two canary sessions read them. Meanwhile a hostile client drives one case:
each AMQP method a client's frame causes, with what the broker refuses. Afterwards:

* the hostile client got exactly the ERROR the case expects (or none);
* every number reached each canary exactly once, never redelivered (a lost consume
  connection would have requeued and redelivered the queue's unacked messages, and a lost
  wire connection would have closed the canary sessions);
* the node's AMQP connections are the very same ones (names and client ports), and the node
  never logged a lost broker connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from tests.relay.e2e import node_connections
from tests.relay.helpers import eventually
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import (
    Frame,
    StompPeer,
    hs_token,
    jwt_env,
    jwt_gateways,
    redis_keys,
    unique,
)

RULES = """
version = 1

[[rule]]
pattern = "/topic/lab.**"
actions = ["subscribe", "send"]

[[rule]]
pattern = "/queue/**"
actions = ["subscribe", "send"]

[[rule]]
pattern = "/amq/queue/**"
actions = ["subscribe", "send"]

[[rule]]
pattern = "/exchange/**"
actions = ["subscribe", "send"]
"""

STREAM_LENGTH = 5
#: Messages the canary publishes before a case starts, and after it is over.
BEFORE, AFTER = 3, 5


@dataclass
class Node:
    gateway: GatewayProcess
    vhost: str
    stream: str  # a stream holding STREAM_LENGTH messages

    def connections(self) -> list[str]:
        """The node's AMQP connections (names and client ports)."""
        return node_connections(self.vhost, self.gateway.node_id)


@pytest.fixture(scope="module")
def node(redis_url: str, log_dir: Path) -> Iterator[Node]:
    vhost = rabbit.create_vhost("stompgate-isolation")
    stream = unique("stream")
    path = f"/queues/{rabbit.quote(vhost)}/{rabbit.quote(stream)}"
    rabbit.mgmt("PUT", path, {"durable": True, "arguments": {"x-queue-type": "stream"}})
    for i in range(STREAM_LENGTH):
        rabbit.mgmt(
            "POST",
            f"/exchanges/{rabbit.quote(vhost)}/amq.default/publish",
            {
                "properties": {},
                "routing_key": stream,
                "payload": f"s{i}",
                "payload_encoding": "string",
            },
        )
    rules = log_dir / "isolation-acl.toml"
    rules.write_text(RULES)
    try:
        with redis_keys(redis_url) as (_, prefix):
            envs = [(unique("iso"), jwt_env(prefix, STOMPGATE_ACL_FILE=str(rules)))]
            with jwt_gateways(rabbit.amqp_url(vhost), log_dir, envs) as (gateway,):
                yield Node(gateway, vhost, stream)
    finally:
        rabbit.delete_vhost(vhost)


# -- the canary -------------------------------------------------------------------------------


@dataclass
class Reader:
    """A canary session's log: the numbers it got, redeliveries, and how it ended."""

    numbers: list[int] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    ended: str | None = None


async def _session(stack: contextlib.AsyncExitStack, port: int, token: str) -> StompPeer:
    peer = await stack.enter_async_context(StompPeer.tcp(port))
    connected = await peer.connect(token)
    assert connected.command == "CONNECTED", connected
    return peer


async def _read(peer: StompPeer, log: Reader, ack: bool) -> None:
    while True:
        try:
            frame = await peer.frame(within=3600)
        except EOFError:
            log.ended = "closed"
            return
        if frame.command == "ERROR":
            log.ended = f"ERROR {frame.message}: {frame.body}"
            return
        if frame.command != "MESSAGE":
            continue
        number = int(frame.body)
        log.numbers.append(number)
        if frame.headers.get("redelivered") == "true":
            log.redelivered.append(number)
        if ack:
            await peer.send_frame("ACK", {"id": frame.headers["ack"]})


class Canary:
    """Numbered messages to a topic and a queue, read by two sessions on the node."""

    def __init__(self, port: int) -> None:
        self.port = port
        key = unique("canary")
        self.topic = f"/topic/lab.{key}"
        self.queue = f"/queue/{key}"
        self.topic_log = Reader()
        self.queue_log = Reader()
        self.sent = 0
        self.failure: str | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        stack = self._stack
        topic_reader = await _session(stack, self.port, hs_token(unique("carol")))
        queue_reader = await _session(stack, self.port, hs_token(unique("carol")))
        publisher = await _session(stack, self.port, hs_token("svc", roles=["service"]))
        await topic_reader.send_frame(
            "SUBSCRIBE", {"id": "t", "destination": self.topic, "receipt": "t"}
        )
        await topic_reader.receipt("t")
        await queue_reader.send_frame(
            "SUBSCRIBE",
            {"id": "q", "destination": self.queue, "ack": "client-individual", "receipt": "q"},
        )
        await queue_reader.receipt("q")
        self._tasks = [
            asyncio.create_task(_read(topic_reader, self.topic_log, ack=False)),
            asyncio.create_task(_read(queue_reader, self.queue_log, ack=True)),
            asyncio.create_task(self._publish(publisher)),
        ]
        async with asyncio.timeout(30):
            await _until(lambda: self.sent >= BEFORE or self.failure is not None)

    async def _publish(self, peer: StompPeer) -> None:
        try:
            while not self._stop.is_set():
                body = str(self.sent)
                await peer.send_frame("SEND", {"destination": self.topic}, body)
                await peer.send_frame(
                    "SEND", {"destination": self.queue, "receipt": f"r{self.sent}"}, body
                )
                await peer.receipt(f"r{self.sent}")
                self.sent += 1
                await asyncio.sleep(0.05)  # well under the per-session frame rate
        except (AssertionError, EOFError, TimeoutError) as exc:
            self.failure = f"publisher: {exc!r}"

    async def finish(self) -> None:
        """Publish AFTER more, stop, and wait until both readers have every number."""
        target = self.sent + AFTER
        async with asyncio.timeout(30):
            await _until(lambda: self.sent >= target or self.failure is not None)
            self._stop.set()
            await self._tasks[2]
            for log in (self.topic_log, self.queue_log):
                await _until(partial(_has_all, log, self.sent))
        for task in self._tasks[:2]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stack.aclose()

    def check(self) -> None:
        assert self.failure is None, self.failure
        assert self.sent >= BEFORE + AFTER
        for name, log in (("topic", self.topic_log), ("queue", self.queue_log)):
            assert log.ended is None, f"{name} canary session ended: {log.ended}"
            assert log.redelivered == [], f"{name} canary got redeliveries"
            assert sorted(log.numbers) == list(range(self.sent)), f"{name} canary has a gap"
        assert self.topic_log.numbers == list(range(self.sent))  # and in order


def _has_all(log: Reader, count: int) -> bool:
    return len(log.numbers) >= count or log.ended is not None


async def _until(done: Callable[[], bool]) -> None:
    """Poll ``done()`` until it holds (the caller bounds the time)."""
    while True:
        if done():
            return
        await asyncio.sleep(0.02)


# -- the hostile client ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def hostile(port: int) -> AsyncIterator[StompPeer]:
    async with StompPeer.tcp(port) as peer:
        connected = await peer.connect(hs_token(unique("mallory")))
        assert connected.command == "CONNECTED", connected
        yield peer


async def subscribe(peer: StompPeer, **headers: str) -> list[Frame]:
    """SUBSCRIBE (id ``h``) with a receipt; the MESSAGEs that came before the RECEIPT."""
    await peer.send_frame("SUBSCRIBE", {"id": "h", "receipt": "subscribed", **headers})
    return [f for f in await peer.receipt("subscribed") if f.command == "MESSAGE"]


async def first_message(peer: StompPeer, seen: list[Frame]) -> Frame:
    if seen:
        return seen[0]
    frame = await peer.frame()
    assert frame.command == "MESSAGE", frame
    return frame


async def refused(peer: StompPeer, command: str, headers: dict[str, str], body: str = "") -> Frame:
    """Send ``command`` with a receipt; the ERROR that answers it (then the close)."""
    await peer.send_frame(command, {**headers, "receipt": "hostile"}, body)
    error = await peer.expect_error()
    assert error.headers.get("receipt-id") == "hostile", error
    return error


def text(error: Frame) -> str:
    return f"{error.message}\n{error.body}"


Case = Callable[[Node, StompPeer], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


@case
async def stream_disconnect_holding_unacked(node: Node, peer: StompPeer) -> None:
    """The issue's case: the node nacked them on disconnect, and the broker closed the
    node's whole consume connection (540 NOT_IMPLEMENTED)."""
    destination = f"/amq/queue/{node.stream}"
    seen = await subscribe(
        peer, destination=destination, ack="client", **{"x-stream-offset": "first"}
    )
    await first_message(peer, seen)  # and disconnect without an ACK, as clients do


@case
async def stream_nack(node: Node, peer: StompPeer) -> None:
    destination = f"/amq/queue/{node.stream}"
    seen = await subscribe(
        peer, destination=destination, ack="client", **{"x-stream-offset": "first"}
    )
    message = await first_message(peer, seen)
    error = await refused(peer, "NACK", {"id": message.headers["ack"]})
    assert error.message == "not_implemented"
    assert error.body.startswith("NOT_IMPLEMENTED - basic.nack and basic.reject not supported")


@case
async def stream_nack_without_requeue_in_a_transaction(node: Node, peer: StompPeer) -> None:
    destination = f"/amq/queue/{node.stream}"
    seen = await subscribe(
        peer, destination=destination, ack="client-individual", **{"x-stream-offset": "first"}
    )
    message = await first_message(peer, seen)
    await peer.send_frame("BEGIN", {"transaction": "tx"})
    await peer.send_frame(
        "NACK", {"id": message.headers["ack"], "requeue": "false", "transaction": "tx"}
    )
    error = await refused(peer, "COMMIT", {"transaction": "tx"})
    assert error.message == "not_implemented"


@case
async def stream_auto_ack(node: Node, peer: StompPeer) -> None:
    """RabbitMQ refuses automatic acknowledgement on a stream with a connection error."""
    destination = f"/amq/queue/{node.stream}"
    seen = await subscribe(
        peer, destination=destination, ack="auto", **{"x-stream-offset": "first"}
    )
    while len(seen) < STREAM_LENGTH:
        seen.append(await first_message(peer, []))
    assert [f.body for f in seen] == [f"s{i}" for i in range(STREAM_LENGTH)]
    await peer.send_frame("DISCONNECT", {"receipt": "bye"})
    await peer.receipt("bye")


def _new_queue(_: Node) -> str:
    return f"/queue/{unique('hostile')}"


def _the_stream(node: Node) -> str:
    return f"/amq/queue/{node.stream}"


def refused_subscribe(
    destination: Callable[[Node], str], headers: dict[str, str], expected: str, message: str = ""
) -> Case:
    """A SUBSCRIBE case: the ERROR names ``expected`` (and has ``message``, if given)."""

    async def run(node: Node, peer: StompPeer) -> None:
        frame = {"id": "h", "destination": destination(node), **headers}
        error = await refused(peer, "SUBSCRIBE", frame)
        assert expected in text(error)
        assert not message or error.message == message

    return run


CASES.update(
    {
        # The broker answers these with a connection error (541), or on a queue declared as
        # a stream with 406: refused before they are sent.
        "stream_offset_the_broker_cannot_parse": refused_subscribe(
            _the_stream, {"x-stream-offset": "bogus"}, "x-stream-offset", "Invalid header"
        ),
        "stream_without_prefetch_declared": refused_subscribe(
            _new_queue,
            {"x-queue-type": "stream", "prefetch-count": "0"},
            "prefetch",
            "precondition_failed",
        ),
        "stream_max_age_the_broker_cannot_parse": refused_subscribe(
            _new_queue, {"x-queue-type": "stream", "x-max-age": "forever"}, "x-max-age"
        ),
        "master_locator_the_broker_cannot_parse": refused_subscribe(
            _new_queue, {"x-queue-master-locator": "balanced"}, "x-queue-master-locator"
        ),
        # Not known before (the queue's type): refused by the broker (406) on the client's
        # own channel.
        "stream_without_prefetch_existing": refused_subscribe(
            _the_stream,
            {"prefetch-count": "0"},
            "PRECONDITION_FAILED - consumer prefetch count is not set",
        ),
        "stream_offset_on_a_classic_queue": refused_subscribe(
            _new_queue, {"x-stream-offset": "first"}, "x-stream-offset"
        ),
    }
)


@case
async def acks_of_unknown_and_settled_messages(node: Node, peer: StompPeer) -> None:
    """An unknown or settled delivery tag is a channel error (406): such ACKs and NACKs are
    not sent; the session goes on."""
    queue = f"/queue/{unique('hostile')}"
    for body in ("m1", "m2"):
        await peer.send_frame("SEND", {"destination": queue, "receipt": body}, body)
        await peer.receipt(body)
    seen = await subscribe(
        peer, destination=queue, ack="client-individual", **{"prefetch-count": "1"}
    )
    first = await first_message(peer, seen)
    await peer.send_frame("ACK", {"id": first.headers["ack"]})
    await peer.send_frame("ACK", {"id": first.headers["ack"]})  # again
    await peer.send_frame("ACK", {"id": "1.999999"})
    await peer.send_frame("NACK", {"id": "7.1"})
    second = await first_message(peer, [])
    assert second.body == "m2"
    await peer.send_frame("ACK", {"id": second.headers["ack"], "receipt": "done"})
    await peer.receipt("done")


@case
async def unsubscribe_and_disconnect_holding_unacked(node: Node, peer: StompPeer) -> None:
    queue = f"/queue/{unique('hostile')}"
    for body in ("m1", "m2", "m3"):
        await peer.send_frame("SEND", {"destination": queue}, body)
    seen = await subscribe(peer, destination=queue, ack="client")
    await first_message(peer, seen)
    await peer.send_frame("UNSUBSCRIBE", {"id": "h", "receipt": "gone"})
    await peer.receipt("gone")
    seen = await subscribe(peer, destination=queue, ack="client")
    await first_message(peer, seen)  # requeued, read again, and held at disconnect


@case
async def send_expiration_too_large(node: Node, peer: StompPeer) -> None:
    headers = {"destination": "/topic/lab.hostile", "expiration": "99999999999"}
    error = await refused(peer, "SEND", headers, "x")
    assert error.message == "precondition_failed"
    assert "expiration" in error.body


@case
async def send_cc_to_a_topic(node: Node, peer: StompPeer) -> None:
    """On the topic channel, which the node's fan-out queue shares: a channel error there
    would have dropped the node's wire connection."""
    error = await refused(peer, "SEND", {"destination": "/topic/lab.hostile", "CC": "x"}, "x")
    assert error.message == "precondition_failed"
    assert "'CC'" in error.body


@case
async def send_bcc_to_a_queue(node: Node, peer: StompPeer) -> None:
    error = await refused(peer, "SEND", {"destination": f"/queue/{unique('h')}", "BCC": "x"}, "x")
    assert error.message == "precondition_failed"
    assert "'BCC'" in error.body


@case
async def send_headers_over_one_frame(node: Node, peer: StompPeer) -> None:
    """The broker answers properties over one frame with FRAME_ERROR: a connection error."""
    headers = {"destination": "/topic/lab.hostile"}
    headers.update({f"h{i}": "x" * 8000 for i in range(20)})
    error = await refused(peer, "SEND", headers, "x")
    assert error.message == "Headers too large"


@case
async def send_to_an_internal_exchange(node: Node, peer: StompPeer) -> None:
    """403 on a channel of that exchange only, not on a channel other sessions share."""
    error = await refused(peer, "SEND", {"destination": "/exchange/amq.rabbitmq.trace/k"}, "x")
    assert "ACCESS_REFUSED" in text(error)


@case
async def send_pipelined_to_a_missing_amq_exchange(node: Node, peer: StompPeer) -> None:
    """``amq.*`` exchanges are not checked first (they always exist, but for made-up
    names): 404 on that exchange's channel. Several in flight at once."""
    for i in range(5):
        await peer.send_frame("SEND", {"destination": "/exchange/amq.made-up/k"}, str(i))
    error = await peer.expect_error()
    assert "NOT_FOUND" in text(error)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_hostile_frame_reaches_no_other_session(node: Node, name: str) -> None:
    # The wire and the consume connection (the management API lists them a little late).
    before = await eventually(node.connections, lambda found: len(found) == 2)
    canary = Canary(node.gateway.stomp_port)
    await canary.start()
    try:
        async with hostile(node.gateway.stomp_port) as peer:
            await CASES[name](node, peer)
    finally:
        await canary.finish()
    canary.check()
    assert await asyncio.to_thread(node.connections) == before
    logs = node.gateway.logs()
    assert "lost RabbitMQ" not in logs
    assert "broker connection lost" not in logs


def test_the_cases_cover_the_documented_refusals() -> None:
    """docs/security.md lists each case this module drives."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    section = doc.split("## What a client's frame may turn into at the broker", 1)[1]
    for message in (
        "not_implemented",
        "precondition_failed",
        "Invalid header",
        "Headers too large",
    ):
        assert f"`{message}`" in section, message
