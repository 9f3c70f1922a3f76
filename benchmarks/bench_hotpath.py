"""The gateway's two hot paths, in-process: ``python -m benchmarks.bench_hotpath``.

``make bench`` compares whole systems, but on a shared 2-core machine its figures drift by
tens of per cent between runs, too much to judge a change worth a few per cent. This one
runs the gateway's own code in a loop, with caches warm and nothing else in the way, and
prints the best of several rounds:

* **fan-out**: one broker delivery handed to the local subscribers of its room and written
  (``NodeFanout`` → ``Connection.deliver`` → ``Node`` flush → WebSocket framing), over
  real sessions and a transport whose ``write`` only counts: µs per delivered MESSAGE;
* **SEND**: one WebSocket message holding a SEND, fed to a real session of an in-process
  gateway node connected to RabbitMQ (a vhost of its own, removed after) until its
  publish is written: µs per SEND, once with the AMQP write to the broker, once with
  that write replaced by a no-op (the Python share alone; confirms then never come, so
  the window is reset by hand).

Figures are far below what the same work costs inside ``make bench``: there, 1,100 sockets,
the broker and the load generator share two cores and every event starts with cold
caches. Use it to compare two versions of the code on one machine, not as absolute costs.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import uvloop
from pamqp import commands as spec

from gateway.access import Access
from gateway.app import Gateway, connection_limits
from gateway.connection import Connection
from gateway.metrics import Metrics
from gateway.node import Node
from gateway.ports import AccessPort, RouterPort
from gateway.relay.fanout import FanoutSubscription, NodeFanout
from gateway.relay.settings import RelaySettings
from gateway.relay.wire import AmqpWire
from gateway.relay.wire_channel import Delivery
from gateway.settings import Settings
from gateway.transport.ws import WebSocketOutbound
from tests.support.rabbit import amqp_url, create_vhost, delete_vhost

BODY = b"t=1234567890123;" + b"x" * 240  # as make bench sends
CONNECT = (
    b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\x00"
)


class NullTransport:
    """Takes writes and counts them; never buffers, never closes."""

    writes = 0

    def write(self, data: bytes) -> None:
        NullTransport.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class NoLimit:
    def breach(self, cost: int, now: float) -> None:
        return None


def null_outbound() -> WebSocketOutbound:
    ws = SimpleNamespace(compress=False)
    return WebSocketOutbound(cast(Any, ws), cast(Any, NullTransport()))


def best_of(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def bench_fanout(rooms: int, subscribers: int, publishes: int, rounds: int) -> float:
    """µs per delivered MESSAGE."""
    access = SimpleNamespace(
        rate_limiter=lambda *_: NoLimit(),
        limits=SimpleNamespace(idle_timeout=0, bytes_burst=0),
        close_ip=lambda peer: None,
    )
    node = Node(Settings(), cast(Access, access))
    metrics, limits = Metrics(), connection_limits(Settings())
    router = cast(RouterPort, SimpleNamespace())  # deliveries only: nothing is routed
    fanout = NodeFanout(RelaySettings(order_hold=0))
    for room in range(rooms):
        for _ in range(subscribers):
            conn = Connection(
                null_outbound(),
                node,
                access=cast(AccessPort, access),
                router=router,
                metrics=metrics,
                limits=limits,
                transport_name="ws",
                peer="bench",
            )
            session = conn.session
            session.receive_data(CONNECT)
            session.events_received()
            session.accept(session_id=conn.session_id, user_name="guest")
            session.data_to_send()
            sub = FanoutSubscription(
                fanout,
                conn,
                "sub-0",
                f"/topic/room.{room}",
                exchange="amq.topic",
                key=f"room.{room}",
            )
            fanout._topics.add(sub.key, sub)  # as NodeFanout.add, minus the broker binding
    properties = spec.Basic.Properties(
        content_type="text/plain", delivery_mode=2, headers={"x-sender": "guest"}
    )
    deliveries = [
        Delivery("amq.topic", f"room.{room}", 1, False, properties, BODY) for room in range(rooms)
    ]
    begin, end, deliver = node.begin_batch, node.end_batch, fanout._on_message

    def run() -> float:
        started = time.perf_counter()
        for i in range(publishes):
            begin()
            deliver(deliveries[i % rooms])
            end()
        return (time.perf_counter() - started) / (publishes * subscribers) * 1e6

    run()  # warm up
    return best_of(rounds, run)


async def bench_send(sends: int, rounds: int, *, write: bool) -> float:
    """µs per SEND, from the WebSocket message to the AMQP write (or a no-op write)."""
    vhost = create_vhost("stompgate-bench")
    os.environ.update(STOMPGATE_FRAMES_PER_SECOND="0", STOMPGATE_BYTES_PER_SECOND="0")
    settings = Settings(http_port=0, stomp_port=0, amqp_url=amqp_url(vhost), auth="dev")
    gateway = Gateway(settings)
    try:
        await gateway.start()
        assert gateway.open_connection is not None
        conn = gateway.open_connection(null_outbound(), transport_name="ws", peer="bench")
        await conn.feed(CONNECT)
        if conn.identity is None:
            raise SystemExit(f"CONNECT refused: {conn.session.data_to_send()!r}")
        if not write:
            wire = gateway.relay._publisher._wire
            assert isinstance(wire, AmqpWire)
            wire.write = lambda data: None  # type: ignore[method-assign]
        frames = [
            b"SEND\ndestination:/topic/room.%d\ncontent-length:%d\n\n%s\x00"
            % (room, len(BODY), BODY)
            for room in range(100)
        ]
        batch = 50  # below the default --max-unconfirmed window of 128

        async def run() -> float:
            spent = 0.0
            for _ in range(sends // batch):
                started = time.perf_counter()
                for frame in frames[:batch]:
                    await conn.feed(frame)
                spent += time.perf_counter() - started
                window = conn._sender.window
                assert window is not None
                if not write:
                    window.in_flight = 0  # no write, no confirm
                await window.settle()
            return spent / (sends // batch * batch) * 1e6

        await run()  # warm up
        return min([await run() for _ in range(rounds)])
    finally:
        for hosted in list(gateway.node.connections):
            assert isinstance(hosted, Connection)
            hosted._output.closing = True  # no transport to close: skip the ERROR and the close
            gateway.node.connections.discard(hosted)
            await hosted.release()  # the user's connection lease in Redis, the relay's state
        await gateway.stop()
        delete_vhost(vhost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--publishes", type=int, default=2000, help="fan-out: per round")
    parser.add_argument("--sends", type=int, default=400, help="SEND: per round")
    args = parser.parse_args()
    fanout = bench_fanout(100, 10, args.publishes, args.rounds)
    print(f"fan-out, 100 rooms x 10 subscribers: {fanout:6.2f} us per delivered MESSAGE")
    for write in (True, False):
        cost = uvloop.run(bench_send(args.sends, args.rounds, write=write))
        what = "with the AMQP write" if write else "Python only (no-op AMQP write)"
        print(f"SEND to /topic/, {what:<32} {cost:6.2f} us per SEND")


if __name__ == "__main__":
    main()
