"""Persist worker throughput and latency: RabbitMQ -> one persist worker -> embedded SQLite.

    python -m benchmarks.bench_persist [--messages 50000] [--batch 500] [--rooms 100]

Needs RabbitMQ on 127.0.0.1:5672 with the management API on :15672 (guest/guest); creates
and deletes a private vhost. Three runs:

1. live: the worker runs while the events are published as fast as publisher confirms
   allow (persistent, a window in flight); each event's publish time is embedded (`sent_at`,
   and kept per id at ns precision) and the worker's store records when `insert_many`
   returned for it, so publish -> stored latency is measured per message. On a small machine
   the publisher, the broker and the worker share the cores, so this run is publisher-bound.
2. paced: the same at a fixed rate (--rate), for latency under a load the machine carries.
3. backlog: all events are queued first, then a fresh worker drains them: the worker's
   stored-messages-per-second with nothing else competing for the broker.

The worker runs in its own process (as in production); the SQLite store uses the default
durability (WAL, synchronous=FULL). Prints the figures; exits 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import uvloop

from store import SQLiteStore, StoredMessage
from workers.framework import BatchSpec
from workers.persist import build_app
from workers.settings import WorkerSettings

MGMT = "http://127.0.0.1:15672/api"
TARGET = 5_000


def mgmt(method: str, path: str, body: Any = None) -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(MGMT + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback only
        pass


class TimedStore(SQLiteStore):
    """SQLiteStore noting when each message's insert_many call returned."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.stored_at: dict[int, int] = {}

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        stored = await super().insert_many(messages)
        now = time.time_ns()
        for m in messages:
            self.stored_at.setdefault(m.id, now)
        return stored


def worker_process(url: str, db: str, expected: int, batch: int, pipe: Connection) -> None:
    uvloop.run(_worker(url, db, expected, batch, pipe))


async def _worker(url: str, db: str, expected: int, batch: int, pipe: Connection) -> None:
    store = TimedStore(db)
    await store.open()
    settings = WorkerSettings(amqp_url=url, metrics_port=None)
    app = build_app(settings, store=store, batch=BatchSpec(max_size=batch, max_wait=0.05))
    await app.start()
    pipe.send("ready")
    while len(store.stored_at) < expected:  # noqa: ASYNC110 - a benchmark's idle poll
        await asyncio.sleep(0.01)
    await app.drain()
    count = await store.count()
    await store.close()
    pipe.send((count, list(store.stored_at.items())))


def event(id_: int, room: str, sent_at: int) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "type": "message",
            "id": str(id_),
            "room": room,
            "sender": f"user{id_ % 997}",
            "client_id": f"bench-{id_}",
            "text": "The quick brown fox jumps over the lazy dog. " * 4,
            "sent_at": sent_at,
        }
    )


async def publish(
    url: str, first_id: int, n: int, rooms: int, *, rate: float = 0, window: int = 300
) -> tuple[dict[int, int], float]:
    """Publish n events (at `rate` per second, or as fast as confirms allow); return
    {id: publish time ns} and the publish duration."""
    published: dict[int, int] = {}
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("amq.topic")
        started = time.perf_counter()
        slots = asyncio.Semaphore(window)
        futures: list[asyncio.Future[Any]] = []

        def release(_: asyncio.Future[Any]) -> None:
            slots.release()

        for i in range(n):
            if rate and i % 10 == 0:
                ahead = started + i / rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            id_ = first_id + i
            room = f"room{i % rooms}"
            now = time.time_ns()
            published[id_] = now
            message = aio_pika.Message(
                event(id_, room, now // 1_000_000),
                headers={"event-type": "message"},
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await slots.acquire()
            future = asyncio.ensure_future(exchange.publish(message, f"room.{room}"))
            future.add_done_callback(release)
            futures.append(future)
        await asyncio.gather(*futures)
        return published, time.perf_counter() - started
    finally:
        await connection.close()


def start_worker(url: str, db: str, n: int, batch: int) -> tuple[Any, Connection]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=worker_process, args=(url, db, n, batch, child), daemon=True)
    proc.start()
    if not parent.poll(60) or parent.recv() != "ready":
        raise RuntimeError("worker did not start")
    return proc, parent


def results(proc: Any, pipe: Connection, timeout: float) -> tuple[int, dict[int, int]]:
    if not pipe.poll(timeout):
        proc.kill()
        raise RuntimeError(f"worker did not store everything within {timeout:.0f} s")
    count, items = pipe.recv()
    proc.join(30)
    return count, dict(items)


async def live(
    url: str, tmp: str, name: str, first_id: int, n: int, args: argparse.Namespace, *, rate: float
) -> tuple[float, list[float]]:
    proc, pipe = start_worker(url, str(Path(tmp) / f"{name}.db"), n, args.batch)
    published, publish_s = await publish(url, first_id, n, args.rooms, rate=rate)
    count, stored = await asyncio.to_thread(results, proc, pipe, 300)
    assert count == n, f"stored {count} of {n}"
    first_pub, last_stored = min(published.values()), max(stored.values())
    latencies = [(stored[i] - published[i]) / 1e6 for i in published]
    end_to_end = n / ((last_stored - first_pub) / 1e9)
    how = f"paced at {rate:,.0f} msgs/s" if rate else "as fast as confirms allow"
    print(f"\n{name} (worker running while publishing, {how}):")
    print(f"  published     {n:>9,} in {publish_s:6.2f} s  = {n / publish_s:>8,.0f} msgs/s")
    print(f"  stored        {count:>9,} exactly once, end to end {end_to_end:>8,.0f} msgs/s")
    print(
        f"  publish->stored latency ms: p50 {pct(latencies, 50):.1f}  "
        f"p99 {pct(latencies, 99):.1f}  max {max(latencies):.1f}"
    )
    return end_to_end, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


async def run(args: argparse.Namespace) -> None:
    vhost = f"stompgate-bench-{uuid.uuid4().hex[:8]}"
    mgmt("PUT", f"/vhosts/{vhost}", {})
    mgmt("PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    url = f"amqp://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
    n = args.messages
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                f"persist benchmark: {n:,} chat.message.v1 events, {args.rooms} rooms, "
                f"batch <= {args.batch}, SQLite (WAL, synchronous=FULL)"
            )

            # 1. live, full speed
            live_rate, _ = await live(url, tmp, "live", 1, n, args, rate=0)
            # 2. live, paced: latency when the machine is not saturated
            await live(url, tmp, "paced", 50_000_000, args.paced_messages, args, rate=args.rate)

            # 3. backlog
            await publish(url, 10_000_000, n, args.rooms)
            started = time.time_ns()
            proc, pipe = start_worker(url, str(Path(tmp) / "backlog.db"), n, args.batch)
            count, stored = await asyncio.to_thread(results, proc, pipe, 300)
            assert count == n, f"stored {count} of {n}"
            first, last = min(stored.values()), max(stored.values())
            drain_rate = n / ((last - first) / 1e9)
            print("\nbacklog (all queued first, then one worker drains the queue):")
            print(
                f"  stored        {count:>9,} in {(last - first) / 1e9:6.2f} s  "
                f"= {drain_rate:>8,.0f} msgs/s  (worker startup {(first - started) / 1e9:.2f} s)"
            )
            verdict = "PASS" if drain_rate >= TARGET else "BELOW TARGET"
            print(
                f"\nworker throughput target >= {TARGET:,} msgs/s: {verdict} "
                f"({drain_rate:,.0f} msgs/s draining a backlog; full-speed live run "
                f"{live_rate:,.0f} msgs/s end to end, bounded by the publisher sharing the cores)"
            )
    finally:
        mgmt("DELETE", f"/vhosts/{vhost}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000, help="paced run: msgs/s")
    parser.add_argument("--paced-messages", type=int, default=10_000)
    uvloop.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
