"""The translation worker: translations per second, and whether it moves chat latency.

    python -m benchmarks.bench_translate [--rounds 3] [--fake 2000] [--apertium 200]
                                         [--posts 300] [--rate 50]

Needs RabbitMQ on 127.0.0.1:5672 with the management API on :15672 (guest/guest), Redis, and
apertium-apy with the English-Spanish pair (`make install`); each round gets a private vhost,
Redis prefix and SQLite file. Two measures, several rounds, side by side:

1. Translations per second through the worker (``python -m workers ...``, its own process),
   every message into Spanish (``STOMPGATE_TRANSLATE_TARGETS=es``), each text new (no cache
   hit): with a provider that answers at once (tests/translate/providers.py: the worker's
   own cost: detection, the store reads, publish with confirm, the store write) and with
   Apertium (a private apertium-apy). The messages are queued first; the rate is counted
   between the first and the last translation event seen on the room's topic.
2. Chat latency, post -> live delivery: a gateway node (``python -m gateway``), a STOMP
   client posting to ``/app/rooms/<room>/messages`` at ``--rate`` per second, another one
   subscribed to the room; p50 and p99 of SEND written -> MESSAGE read, without the
   translation worker, with it translating every post with Apertium, and with it and
   apertium-apy at a lower CPU priority (``--nice``): where they share a few cores with a
   gateway node, they compete with it for CPU, and niceness settles who goes first.

Prints the figures; asserts nothing about speed; exits 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aio_pika
import orjson
import uvloop
from aio_pika.abc import AbstractIncomingMessage

from tests.e2e.procs import WorkerProcess
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import StompPeer, next_message, subscribe
from tests.translate.apertium_proc import ApertiumProcess
from tests.translate.providers import EchoProvider
from workers.framework import WorkerApp
from workers.settings import WorkerSettings
from workers.translate.settings import TranslateSettings
from workers.translate.worker import QUEUE, build_app

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
#: English words for texts that are all different (the translation cache never answers).
WORDS = [
    "the", "morning", "train", "was", "late", "again", "so", "we", "met", "at", "the",
    "small", "cafe", "near", "the", "station", "and", "talked", "about", "the", "new",
    "project", "until", "the", "rain", "stopped",
]  # fmt: skip


def fake_worker(settings: WorkerSettings) -> WorkerApp:
    """The translation worker with a provider that answers at once (`python -m workers
    benchmarks.bench_translate:fake_worker`), under the limits Apertium gets."""
    translate = TranslateSettings.from_env()
    limits = {**translate.limits, "fake": translate.limits_for("apertium")}
    return build_app(
        settings, translate=dataclasses.replace(translate, limits=limits), provider=EchoProvider()
    )


def text(n: int) -> str:
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(12)]
    return " ".join(words).capitalize() + f", number {n}."


@contextmanager
def private(tmp: Path) -> Iterator[tuple[str, str, str]]:
    """(AMQP URL of a fresh vhost, Redis prefix, store URL), cleaned up afterwards."""
    vhost = rabbit.create_vhost("stompgate-bench")
    try:
        yield (
            rabbit.amqp_url(vhost),
            f"stompgate-bench:{uuid.uuid4().hex[:8]}:",
            f"sqlite:///{tmp / (uuid.uuid4().hex + '.db')}",
        )
    finally:
        rabbit.delete_vhost(vhost)


def translator(
    spec: str, amqp: str, prefix: str, store: str, log_dir: Path, apertium: str
) -> WorkerProcess:
    proc = WorkerProcess(
        amqp_url=amqp,
        store_url=store,
        name=f"translate-{uuid.uuid4().hex[:6]}",
        worker=spec,
        env={
            "STOMPGATE_REDIS_URL": REDIS_URL,
            "STOMPGATE_REDIS_PREFIX": prefix,
            "STOMPGATE_TRANSLATE_TARGETS": "es",
            # the providers' rate limit (10 a second by default) would be all one measured
            "STOMPGATE_TRANSLATE_RATE": "0",
            "STOMPGATE_TRANSLATE_APERTIUM_URL": apertium,
            "STOMPGATE_LOG_LEVEL": "WARNING",
        },
    )
    proc.start(log_dir, timeout=120)
    return proc


@asynccontextmanager
async def watching(amqp: str, room: str) -> AsyncIterator[list[float]]:
    """The monotonic times translation events reach the room's topic."""
    seen: list[float] = []
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind("amq.topic", f"room.{room}")

        async def on_message(message: AbstractIncomingMessage) -> None:
            if (message.headers or {}).get("event-type") == "translation":
                seen.append(time.monotonic())

        await queue.consume(on_message, no_ack=True)
        yield seen
    finally:
        await connection.close()


async def declare_queue(amqp: str) -> None:
    """The worker's queue, bound (as rabbitmq/definitions.json has it before any worker)."""
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind("amq.topic", "room.*")
    finally:
        await connection.close()


async def queue_posts(amqp: str, room: str, count: int) -> None:
    """``count`` chat.message.v1 events on the room's topic, as the gateway publishes them;
    the worker's queue collects them."""
    await declare_queue(amqp)
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("amq.topic")
        sent_at = time.time_ns() // 1_000_000
        for start in range(0, count, 200):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            orjson.dumps(
                                {
                                    "v": 1,
                                    "type": "message",
                                    "id": str(10**15 + n),
                                    "room": room,
                                    "sender": f"user{n % 50}",
                                    "client_id": f"b{n}",
                                    "text": text(n),
                                    "sent_at": sent_at,
                                }
                            ),
                            headers={"event-type": "message"},
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=f"room.{room}",
                    )
                    for n in range(start, min(count, start + 200))
                )
            )
    finally:
        await connection.close()


async def throughput(spec: str, count: int, tmp: Path, apertium: str) -> float:
    """Translations per second of one worker through a backlog of ``count`` messages."""
    with private(tmp) as (amqp, prefix, store):
        room = "bench"
        await queue_posts(amqp, room, count)
        async with watching(amqp, room) as seen:
            proc = await asyncio.to_thread(translator, spec, amqp, prefix, store, tmp, apertium)
            try:
                deadline = time.monotonic() + 600
                while len(seen) < count:
                    if time.monotonic() > deadline:
                        print(f"  only {len(seen)} of {count} translations after 600 s")
                        break
                    await asyncio.sleep(0.05)
            finally:
                await asyncio.to_thread(proc.stop)
        if len(seen) < 2:
            return 0.0
        return (len(seen) - 1) / (seen[-1] - seen[0])


async def latencies(
    tmp: Path, apy: ApertiumProcess, posts: int, rate: float, *, worker: int | None
) -> list[float]:
    """Post -> delivery times (ms) of ``posts`` chat posts through a gateway node; with
    ``worker`` (a niceness), the translation worker and apertium-apy run at that priority."""
    apertium = apy.url
    with private(tmp) as (amqp, prefix, store):
        env = {"STOMPGATE_REDIS_PREFIX": prefix, "STOMPGATE_STORE": store}
        node = GatewayProcess(amqp_url=amqp, node_id=f"bench-{uuid.uuid4().hex[:6]}", env=env)
        await asyncio.to_thread(node.start, tmp)
        await declare_queue(amqp)  # without the worker it collects the posts, as when stopped
        proc = None
        if worker is not None:
            proc = await asyncio.to_thread(
                translator, "translate", amqp, prefix, store, tmp, apertium
            )
            priority(proc, apy, worker)
        try:
            return await _measure(node, posts, rate)
        finally:
            if proc is not None:
                priority(proc, apy, 0)
                await asyncio.to_thread(proc.stop)
            await asyncio.to_thread(node.stop)


def priority(proc: WorkerProcess, apy: ApertiumProcess, niceness: int) -> None:
    """The worker's and apertium-apy's (with its pipelines: its process group) CPU priority;
    going back to 0 needs root (this machine's tests run as root; elsewhere it stays)."""
    for which, who in ((os.PRIO_PROCESS, proc.process), (os.PRIO_PGRP, apy.process)):
        if who is not None:
            with contextlib.suppress(PermissionError, ProcessLookupError):
                os.setpriority(which, who.pid, niceness)


async def _measure(node: GatewayProcess, posts: int, rate: float) -> list[float]:
    room = f"lat-{uuid.uuid4().hex[:6]}"
    sent: dict[str, float] = {}
    took: list[float] = []
    async with StompPeer.tcp(node.stomp_port) as reader, StompPeer.tcp(node.stomp_port) as poster:
        for peer, user in ((reader, "alice"), (poster, "bob")):
            frame = await peer.connect(headers=[("login", user), ("passcode", user)])
            assert frame.command == "CONNECTED", frame
        await subscribe(reader, f"/topic/room.{room}")

        async def read() -> None:
            while len(took) < posts:
                found = await next_message(reader, within=60)
                if found.headers.get("event-type") != "message":
                    continue
                client_id = json.loads(found.body)["client_id"]
                took.append((time.monotonic() - sent[client_id]) * 1000)

        reading = asyncio.create_task(read())
        started = time.monotonic()
        for n in range(posts):
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            client_id = f"p{n}"
            sent[client_id] = time.monotonic()
            await poster.send_frame(
                "SEND",
                {"destination": f"/app/rooms/{room}/messages"},
                json.dumps({"client_id": client_id, "text": text(n)}),
            )
        await asyncio.wait_for(reading, 120)
    return took


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        apy = ApertiumProcess()
        apy.start(tmp / "apertium-apy.log")
        try:
            print(
                f"translations/s through the worker (a backlog of {args.fake:,} messages for "
                f"the instant provider, {args.apertium:,} for Apertium; every one into Spanish)"
            )
            print(f"{'round':>5}  {'instant provider':>17}  {'apertium':>9}")
            for r in range(1, args.rounds + 1):
                fast = await throughput(
                    "benchmarks.bench_translate:fake_worker", args.fake, tmp, apy.url
                )
                slow = await throughput("translate", args.apertium, tmp, apy.url)
                print(f"{r:>5}  {fast:>15,.0f}/s  {slow:>7,.1f}/s", flush=True)
            print(
                f"\nchat post -> live delivery through a gateway, {args.posts} posts at "
                f"{args.rate:g}/s (ms)"
            )
            print(
                f"{'round':>5}  {'without worker':>16}  {'with worker':>16}  "
                f"{'with worker, nice ' + str(args.nice):>22}"
            )
            print(f"{'':>5}  {'p50 / p99':>16}  {'p50 / p99':>16}  {'p50 / p99':>22}")
            for r in range(1, args.rounds + 1):
                row = [
                    await latencies(tmp, apy, args.posts, args.rate, worker=niceness)
                    for niceness in (None, 0, args.nice)
                ]
                cells = [f"{p(t, 50):.1f} / {p(t, 99):.1f}" for t in row]
                print(f"{r:>5}  {cells[0]:>16}  {cells[1]:>16}  {cells[2]:>22}", flush=True)
        finally:
            apy.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fake", type=int, default=2000, help="messages, instant provider")
    parser.add_argument("--apertium", type=int, default=200, help="messages, Apertium")
    parser.add_argument("--posts", type=int, default=300, help="chat posts per latency round")
    parser.add_argument("--rate", type=float, default=50.0, help="chat posts per second")
    parser.add_argument("--nice", type=int, default=10, help="the worker's lower priority")
    uvloop.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
