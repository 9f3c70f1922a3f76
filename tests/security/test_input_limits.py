"""Every frame and every byte is charged (issue 13, point 3; issue 14, points 6 and 10).

A real node in JWT mode with an ACL, small budgets (frame deadline 2 s, node input budget
32 MiB, HTTP header deadline 1.5 s, 40 connections per IP) and otherwise the defaults: the
WebSocket listener has the browsers' rates (50 frames/s, burst 100), the TCP listener and
the ``service`` role none. In each case the canary of ``test_broker_isolation`` (two
sessions reading numbered messages from a topic and a queue) runs on the same node and must
lose nothing, and the node's AMQP connections must be the same ones afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.relay.e2e import node_connections
from tests.relay.helpers import eventually
from tests.security.test_broker_isolation import RULES, Canary
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

MIB = 1024 * 1024
FRAME_TIMEOUT = 2.0
BUDGET = 32 * MIB
HEADER_TIMEOUT = 1.5
PER_IP = 40


@dataclass
class Node:
    gateway: GatewayProcess
    vhost: str

    def connections(self) -> list[str]:
        return node_connections(self.vhost, self.gateway.node_id)


@contextlib.contextmanager
def gateway(redis_url: str, log_dir: Path, name: str, **env: str) -> Iterator[Node]:
    vhost = rabbit.create_vhost(f"stompgate-{name}")
    rules = log_dir / f"{name}-acl.toml"
    rules.write_text(RULES)
    try:
        with redis_keys(redis_url) as (_, prefix):
            config = jwt_env(
                prefix,
                STOMPGATE_ACL_FILE=str(rules),
                STOMPGATE_MAX_BUFFERED_BYTES=str(BUDGET),
                STOMPGATE_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                STOMPGATE_MAX_CONNECTIONS_PER_IP=str(PER_IP),
                STOMPGATE_MAX_CONNECTIONS_PER_USER="100",
                **env,
            )
            with jwt_gateways(rabbit.amqp_url(vhost), log_dir, [(unique(name), config)]) as (
                started,
            ):
                yield Node(started, vhost)
    finally:
        rabbit.delete_vhost(vhost)


@pytest.fixture(scope="module")
def node(redis_url: str, log_dir: Path) -> Iterator[Node]:
    with gateway(redis_url, log_dir, "input", STOMPGATE_FRAME_TIMEOUT=str(FRAME_TIMEOUT)) as found:
        yield found


@pytest.fixture(scope="module")
def parking_node(redis_url: str, log_dir: Path) -> Iterator[Node]:
    """Without a frame deadline: parked frames stay parked however slow this machine is."""
    with gateway(redis_url, log_dir, "parking", STOMPGATE_FRAME_TIMEOUT="0") as found:
        yield found


@contextlib.asynccontextmanager
async def canary_on(node: Node) -> AsyncIterator[Canary]:
    """The canary runs while the case does; afterwards it has every number, and the node
    kept its broker connections."""
    before = await eventually(node.connections, lambda found: len(found) == 2)
    canary = Canary(node.gateway.stomp_port)
    await canary.start()
    try:
        yield canary
    finally:
        await canary.finish()
    canary.check()
    assert await asyncio.to_thread(node.connections) == before
    assert "broker connection lost" not in node.gateway.logs()


@contextlib.asynccontextmanager
async def session(
    node: Node, transport: str, user: str, roles: tuple[str, ...] = ("member",)
) -> AsyncIterator[StompPeer]:
    gw = node.gateway
    opened = StompPeer.tcp(gw.stomp_port) if transport == "tcp" else StompPeer.ws(gw.ws_url)
    async with opened as peer:
        connected = await peer.connect(hs_token(user, roles=list(roles)))
        assert connected.command == "CONNECTED", connected
        yield peer


def send(destination: str, body: bytes, **headers: str) -> bytes:
    head = "".join(f"{k}:{v}\n" for k, v in headers.items())
    return (
        f"SEND\ndestination:{destination}\ncontent-length:{len(body)}\n{head}\n".encode()
        + body
        + b"\x00"
    )


async def nothing_arrives(peer: StompPeer, within: float = 1.0) -> None:
    """No MESSAGE reaches ``peer`` for ``within`` seconds."""
    with contextlib.suppress(TimeoutError):
        found = await peer.frame(within=within)
        raise AssertionError(f"unexpected frame: {found}")


async def drain_messages(peer: StompPeer, count: int, within: float) -> list[Frame]:
    got: list[Frame] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            found = await peer.frame(within=within)
            assert found.command == "MESSAGE", found
            got.append(found)
    return got


# -- transactions --------------------------------------------------------------------------


async def test_a_big_transaction_is_refused_by_its_byte_budget(node: Node) -> None:
    """The issue's case: 128 SENDs of 1 MiB in one transaction (here from a service over TCP,
    which has no rate limits): refused at the 9th MiB, and nothing of it delivered."""
    queue = f"/queue/{unique('tx')}"
    async with canary_on(node), session(node, "tcp", unique("reader")) as reader:
        await reader.send_frame("SUBSCRIBE", {"id": "r", "destination": queue, "receipt": "r"})
        await reader.receipt("r")
        async with session(node, "tcp", "svc", ("service",)) as peer:
            await peer.send_frame("BEGIN", {"transaction": "tx"})
            body = b"x" * MIB
            with contextlib.suppress(ConnectionError):  # the node may stop reading early
                for _ in range(128):
                    await peer.send_raw(send(queue, body, transaction="tx"))
                await peer.send_frame("COMMIT", {"transaction": "tx", "receipt": "c"})
            error = await peer.expect_error()
        assert error.message == "Transaction too large"
        assert error.said.startswith("transaction 'tx' too large: ")
        assert error.said.endswith(" bytes > max_transaction_bytes 8388608")
        await nothing_arrives(reader)


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_frames_inside_a_transaction_are_charged(node: Node, transport: str) -> None:
    """150 small SENDs inside one transaction are 150 frames against the browsers' rate
    (burst 100): the session ends before COMMIT and nothing is delivered. TCP: a browser's
    identity has the TCP listener's rates (none), so the transaction goes through."""
    queue = f"/queue/{unique('txr')}"
    async with canary_on(node), session(node, "tcp", unique("reader")) as reader:
        await reader.send_frame("SUBSCRIBE", {"id": "r", "destination": queue, "receipt": "r"})
        await reader.receipt("r")
        async with session(node, transport, unique("alice")) as peer:
            frames = b"BEGIN\ntransaction:tx\n\n\x00" + b"".join(
                send(queue, str(i).encode(), transaction="tx") for i in range(150)
            )
            await peer.send_raw(frames + b"COMMIT\ntransaction:tx\nreceipt:c\n\n\x00")
            if transport == "ws":
                error = await peer.expect_error()
                assert error.message == "Rate limit exceeded"
                assert error.said == "rate limit exceeded: frames_per_second 50 (burst 100)"
                await nothing_arrives(reader)
            else:
                await peer.receipt("c")
                got = await drain_messages(reader, 150, within=30)
                assert [m.body for m in got] == [str(i) for i in range(150)]


# -- unfinished frames ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_trickled_frame_is_ended_by_its_deadline(node: Node, transport: str) -> None:
    async with canary_on(node), session(node, transport, unique("slow")) as peer:
        await peer.send_raw(b"SEND\ndestination:/queue/slow\n\nabc")
        started = time.monotonic()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                for _ in range(100):  # a byte every 0.2 s: the idle timeout never fires
                    await asyncio.sleep(0.2)
                    await peer.send_raw(b"x")

        trickling = asyncio.create_task(trickle())
        try:
            error = await peer.expect_error(within=FRAME_TIMEOUT + 10)
        finally:
            trickling.cancel()
        elapsed = time.monotonic() - started
    assert error.message == "Frame timeout"
    assert error.said.startswith("frame timeout: a frame begun ")
    assert error.said.endswith(f"is still unfinished (frame_timeout {FRAME_TIMEOUT:g} s)")
    assert error.headers["stompgate-reason"] == "frame_timeout"
    assert elapsed >= FRAME_TIMEOUT


async def test_parked_partial_frames_are_refused_past_the_node_budget(
    parking_node: Node,
) -> None:
    """20 sessions each park 3 MiB of an unfinished frame: the node holds at most its 32 MiB
    budget; the sessions that would pass it get an ERROR, the others keep going."""
    node = parking_node
    body = 3 * MIB
    head = f"SEND\ndestination:/queue/park\nreceipt:done\ncontent-length:{body}\n\n".encode()
    parked = len(head) + body - 1024  # bytes each session holds: all but 1 KiB of a frame
    async with canary_on(node), contextlib.AsyncExitStack() as stack:
        peers = [
            await stack.enter_async_context(session(node, "tcp", unique("park"))) for _ in range(20)
        ]
        for peer in peers:
            await peer.send_raw(head + b"y" * (body - 1024))

        # Each session has sent all it will; every refusal is out once the node read it all.
        async def answer(peer: StompPeer) -> Frame | None:
            try:
                return await peer.frame(within=3)
            except TimeoutError:
                return None

        answers = await asyncio.gather(*(answer(peer) for peer in peers))
        errors = [found for found in answers if found is not None]
        alive = [peer for peer, found in zip(peers, answers, strict=True) if found is None]
        assert len(alive) == BUDGET // parked  # 10 fit, the 11th would pass the budget
        for error in errors:
            assert error.message == "Limit exceeded"
            assert error.headers["stompgate-reason"] == "buffered_bytes"
            assert error.said.startswith("node input budget exceeded: this session would hold ")
            assert error.said.endswith(f"of max_buffered_bytes {BUDGET}")
        # The admitted ones finish their frames (1 KiB more each still fits the budget)...
        for peer in alive:
            await peer.send_raw(b"y" * 1024 + b"\x00")
        for peer in alive:
            await peer.receipt("done")
        # ... and what they held is free again: a new session parks as much.
        async with session(node, "tcp", unique("park")) as again:
            await again.send_raw(head + b"y" * (body - 1024))
            await nothing_arrives(again, within=1)


# -- plain HTTP before the upgrade ---------------------------------------------------------


async def _read_all(reader: asyncio.StreamReader, within: float) -> bytes:
    async with asyncio.timeout(within):
        return await reader.read()


async def test_silent_and_trickling_http_sockets_meet_a_deadline_and_the_ip_limit(
    node: Node,
) -> None:
    port = node.gateway.http_port
    async with canary_on(node):
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(PER_IP - 3)]
        # One trickles a request line a byte at a time.
        trickler = opened[0]
        line = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in line:
                    trickler[1].write(bytes((byte,)))
                    await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        # Past the limit (the canary holds 3 sockets): refused, whatever it does.
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
        last_reader, last_writer = await asyncio.open_connection("127.0.0.1", port)
        last_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await _read_all(last_reader, within=5)
        assert answer.startswith(b"HTTP/1.1 429 "), answer
        assert f"> max_connections_per_ip {PER_IP}".encode() in answer
        # A silent one past the limit is not counted, and closed after its short grace.
        answer = await _read_all(extra_reader, within=5)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        # Every socket that never finished a request is closed at the deadline: 408.
        for reader, _ in opened:
            answer = await _read_all(reader, within=HEADER_TIMEOUT + 5)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        await trickling
        for _, writer in [*opened, (extra_reader, extra_writer), (last_reader, last_writer)]:
            writer.close()
        # The slots came back: a WebSocket client is served (its CONNECT timeout then runs).
        async with session(node, "ws", unique("back")) as peer:
            await peer.send_frame("DISCONNECT", {"receipt": "bye"})
            await peer.receipt("bye")


# -- per listener and per role -------------------------------------------------------------


async def test_a_service_over_tcp_sends_ten_thousand_and_all_arrive(node: Node) -> None:
    queue = f"/queue/{unique('bulk')}"
    count = 10_000
    async with canary_on(node), session(node, "tcp", unique("consumer")) as consumer:
        await consumer.send_frame("SUBSCRIBE", {"id": "c", "destination": queue, "receipt": "c"})
        await consumer.receipt("c")
        async with session(node, "tcp", "svc", ("service",)) as peer:
            frames = b"".join(send(queue, str(i).encode()) for i in range(count))
            await peer.send_raw(frames)
            await peer.send_frame("DISCONNECT", {"receipt": "bye"})
            await peer.receipt("bye", within=60)
        got = await drain_messages(consumer, count, within=60)
    assert sorted(int(m.body) for m in got) == list(range(count))


async def test_a_browser_over_websocket_still_hits_the_frame_rate(node: Node) -> None:
    queue = f"/queue/{unique('bulk')}"
    async with canary_on(node), session(node, "ws", unique("browser")) as peer:
        await peer.send_raw(b"".join(send(queue, str(i).encode()) for i in range(10_000)))
        error = await peer.expect_error(within=30)
    assert error.message == "Rate limit exceeded"
    assert error.said == "rate limit exceeded: frames_per_second 50 (burst 100)"


async def test_sixteen_mib_over_tcp_reach_two_subscribers_whole(node: Node) -> None:
    topic = f"/topic/lab.{unique('big')}"
    body = bytes(range(256)) * (16 * MIB // 256)
    async with (
        canary_on(node),
        session(node, "tcp", unique("a")) as first,
        session(node, "tcp", unique("b")) as second,
    ):
        for n, sub in enumerate((first, second)):
            await sub.send_frame("SUBSCRIBE", {"id": f"s{n}", "destination": topic, "receipt": "s"})
            await sub.receipt("s")
        async with session(node, "tcp", "svc", ("service",)) as peer:
            await peer.send_raw(send(topic, body, receipt="big"))
            await peer.receipt("big", within=60)
        for sub in (first, second):
            message = await raw_message(sub, within=60)
            assert message == body


async def raw_message(peer: StompPeer, within: float) -> bytes:
    """The body of the next MESSAGE, as bytes (``Frame.body`` decodes text)."""
    async with asyncio.timeout(within):
        while True:
            buffer = peer._buffer.lstrip(b"\r\n")
            end = buffer.find(b"\n\n")
            if end >= 0:
                head = buffer[:end].decode().split("\n")
                headers = dict(line.partition(":")[::2] for line in head[1:])
                length = int(headers["content-length"])
                if len(buffer) >= end + 2 + length + 1:
                    assert head[0] == "MESSAGE", head
                    return buffer[end + 2 : end + 2 + length]
            data = await peer._read()
            assert data, "closed"
            peer._buffer += data


async def test_a_frame_over_the_tcp_limit_gets_the_error_not_a_broken_pipe(node: Node) -> None:
    limit = 16 * MIB + 64 * 1024
    body = b"z" * (17 * MIB)
    async with canary_on(node), session(node, "tcp", "svc", ("service",)) as peer:
        await peer.send_raw(send("/queue/too-big", body))  # every byte written: no EPIPE
        error = await peer.expect_error()
    assert error.message == "Frame too large"
    assert error.said.startswith("frame too large: ")
    assert error.said.endswith(f"> max_frame_size {limit}")
