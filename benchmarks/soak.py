"""The soak: mixed chat traffic for a long time against a real deployment, with figures per
minute and a verdict at the end. ``python -m benchmarks.soak --minutes 30`` (``make soak``;
``SOAK_MINUTES`` sets the default).

What runs: two gateway nodes (``python -m gateway``) and the persist worker (``python -m
workers persist``, SQLite store) on a fresh vhost of the local RabbitMQ, and a private
``redis-server`` (so its ``used_memory`` is the deployment's alone). The traffic, over STOMP
on the nodes' TCP listeners, spread over both nodes:

* posters (one per room and node) post to ``/app/rooms/<room>/messages`` with a receipt and
  now and then show typing;
* readers follow a room from the first post on, mark what they read (``/read``) and
  reconnect every ``--reconnect-seconds`` to the other node with ``cur-max-message-id``
  (the catch-up replays what they missed);
* churners subscribe to a random room and unsubscribe again, over and over (the nodes bind
  and unbind the room: the room order's restart, `gateway.relay.ordering`).

Per minute it prints each node's RSS and open file descriptors, Redis ``used_memory``, the
post→delivery latency (p50/p99/max, live deliveries to readers, from the SEND to the
MESSAGE) and the counts so far: sent, receipted, delivered (to readers), stored, errors.

At the end it checks that every receipted post was stored exactly once and reached every
reader of its room exactly once (replays included), and that RSS, descriptors and Redis
memory did not keep growing (a trend check over the samples after the warm-up: the last
third against the middle third; it prints its verdict). Redis ``used_memory`` does grow with
the posts, by design: each post's idempotency key (``client:<user>:<client_id>``, about 100
bytes) lives 24 hours; so the keys without a TTL are checked too. The exit status is 1 if a
check failed. ``tests/e2e/test_soak.py`` runs a 2-minute version (marked ``soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway import stomp_headers
from gateway.stomp import Frame, HeartBeat, Limits, Parser, ProtocolError, serialize
from tests.e2e.procs import WorkerProcess, history_after, store_rows
from tests.support.gateway_proc import GatewayProcess
from tests.support.rabbit import amqp_url, create_vhost, delete_vhost

__all__ = ["SoakConfig", "SoakResult", "main", "run"]

DEFAULT_MINUTES = 30.0
USERS = {"poster": "alice", "reader": "bob", "churner": "guest"}
PASSWORDS = {"alice": "alice", "bob": "bob", "guest": "guest"}


@dataclass
class SoakConfig:
    minutes: float = DEFAULT_MINUTES
    rooms: int = 3
    post_rate: float = 2.0
    """Posts per second of each poster (there is one per room and node)."""
    readers_per_room: int = 2
    reconnect_seconds: float = 20.0
    churners: int = 2
    sample_seconds: float = 10.0
    report_seconds: float = 60.0
    warmup_fraction: float = 1 / 3
    """Samples in this first part of the run are left out of the trend check."""
    growth_limit: float = 0.15
    """The trend check fails a series whose last third sits above its middle third by more
    than the absolute slack below; above by this fraction only, it says "rising"."""
    rss_slack_mib: float = 8.0
    fd_slack: int = 16
    redis_slack_mib: float = 2.0
    redis_key_slack: int = 20
    log_dir: Path | None = None


@dataclass
class Sample:
    at: float
    rss_mib: list[float]
    fds: list[int]
    redis_mib: float
    redis_lasting_keys: int
    """Redis keys without a TTL: what no expiry bounds (the posts' idempotency keys live
    24 h by design, so ``used_memory`` grows with the posts for a day)."""


@dataclass
class SoakResult:
    sent: int = 0
    receipted: int = 0
    delivered: int = 0
    stored: int = 0
    errors: int = 0
    lost_stored: int = 0
    lost_delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    replay_more: int = 0
    room_order: dict[str, float] = field(default_factory=dict)
    """The nodes' room order counters at the end (held, skipped, dropped), summed."""
    reconnects: int = 0
    churn_cycles: int = 0
    samples: list[Sample] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    error_texts: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return self.lost_stored == 0 and self.lost_delivered == 0 and self.duplicated == 0

    @property
    def bounded(self) -> bool:
        return not any(v.startswith("GROWING") for v in self.verdicts.values())


# -- a small asyncio STOMP client (the project's own codec) ----------------------------------


class StompError(Exception):
    """An ERROR frame, or the connection went away."""


class Client:
    """One STOMP 1.2 session over TCP; MESSAGE frames go to ``on_message``."""

    def __init__(self, port: int, on_message: Callable[[Frame], None] | None = None) -> None:
        self.port = port
        self.on_message = on_message or (lambda frame: None)
        self._parser = Parser(Limits(max_frame_size=1 << 22))
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._receipts: dict[str, asyncio.Future[Frame]] = {}
        self._next = 0
        self.closed = asyncio.Event()

    async def open(self, user: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        connected: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._receipts["CONNECTED"] = connected
        self._reader_task = asyncio.create_task(self._read(reader))
        self._write(
            Frame(
                "CONNECT",
                (
                    ("accept-version", "1.2"),
                    ("host", "stompgate"),
                    ("login", user),
                    ("passcode", PASSWORDS[user]),
                    ("heart-beat", "0,0"),
                ),
                b"",
            )
        )
        async with asyncio.timeout(15):
            await connected

    def _write(self, frame: Frame) -> None:
        if self._writer is None or self.closed.is_set():
            raise StompError("connection closed")
        self._writer.write(serialize(frame, "1.2"))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                self._parser.feed(data)
                while (event := self._parser.next_event()) is not None:
                    if isinstance(event, HeartBeat):
                        continue
                    if isinstance(event, ProtocolError):
                        raise StompError(f"unparsable frame from the gateway: {event}")
                    self._frame(event)
        except (ConnectionError, StompError) as exc:
            self._fail(StompError(str(exc)))
        finally:
            self._fail(StompError("connection closed"))

    def _frame(self, frame: Frame) -> None:
        if frame.command == "MESSAGE":
            self.on_message(frame)
        elif frame.command == "CONNECTED":
            future = self._receipts.pop("CONNECTED", None)
            if future is not None and not future.done():
                future.set_result(frame)
        elif frame.command == "RECEIPT":
            future = self._receipts.pop(frame.header("receipt-id") or "", None)
            if future is not None and not future.done():
                future.set_result(frame)
        elif frame.command == "ERROR":
            text = f"{frame.header('message')}: {frame.body[:200]!r}"
            self._fail(StompError(text))

    def _fail(self, error: StompError) -> None:
        self.closed.set()
        for future in self._receipts.values():
            if not future.done():
                future.set_exception(error)
        self._receipts.clear()

    async def request(
        self, command: str, headers: list[tuple[str, str]], body: bytes = b"", within: float = 30
    ) -> Frame:
        """Send a frame with a receipt; its RECEIPT (`StompError` on an ERROR or a close)."""
        self._next += 1
        receipt = f"r{self._next}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._receipts[receipt] = future
        self._write(Frame(command, (*headers, ("receipt", receipt)), body))
        async with asyncio.timeout(within):
            return await future

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.request("DISCONNECT", [], within=5)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task


# -- the traffic -----------------------------------------------------------------------------


class Traffic:
    def __init__(
        self,
        config: SoakConfig,
        ports: list[int],
        rooms: list[str],
        count_stored: Callable[[], int],
    ) -> None:
        self.config = config
        self.count_stored = count_stored
        self.ports = ports
        self.rooms = rooms
        self.result = SoakResult()
        self.stop = asyncio.Event()
        self.sent_at: dict[str, float] = {}  # client_id -> when its SEND went out
        self.receipted: dict[str, dict[int, str]] = {room: {} for room in rooms}
        self.readers: list[Reader] = []
        self.latencies: list[float] = []  # this report period's, in seconds
        self.rng = random.Random()

    def error(self, where: str, exc: BaseException) -> None:
        self.result.errors += 1
        if len(self.result.error_texts) < 20:
            self.result.error_texts.append(f"{where}: {type(exc).__name__}: {exc}")

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def poster(self, room: str, port: int) -> None:
        client: Client | None = None
        period = 1 / self.config.post_rate
        while not self.stop.is_set():
            try:
                if client is None or client.closed.is_set():
                    client = Client(port)
                    await client.open(USERS["poster"])
                client_id = uuid.uuid4().hex
                body = json.dumps({"client_id": client_id, "text": f"soak {client_id[:8]}"})
                self.sent_at[client_id] = time.monotonic()
                self.result.sent += 1
                receipt = await client.request(
                    "SEND",
                    [
                        ("destination", f"/app/rooms/{room}/messages"),
                        ("content-type", "application/json"),
                    ],
                    body.encode(),
                )
                message_id = receipt.header(stomp_headers.MESSAGE_ID)
                if message_id is None:
                    raise StompError(f"a post's RECEIPT without its id: {receipt}")
                self.receipted[room][int(message_id)] = client_id
                self.result.receipted += 1
                if self.rng.random() < 0.2:
                    await client.request(
                        "SEND",
                        [
                            ("destination", f"/app/rooms/{room}/typing"),
                            ("content-type", "application/json"),
                        ],
                        json.dumps({"typing": True}).encode(),
                    )
            except (StompError, OSError, TimeoutError) as exc:
                self.error(f"poster {room}", exc)
                if client is not None:
                    await client.close()
                client = None
            await self.pause(period * self.rng.uniform(0.5, 1.5))
        if client is not None:
            await client.close()

    async def churner(self, index: int) -> None:
        client: Client | None = None
        while not self.stop.is_set():
            try:
                if client is None or client.closed.is_set() or self.rng.random() < 0.05:
                    if client is not None:
                        await client.close()
                    client = Client(self.rng.choice(self.ports))
                    await client.open(USERS["churner"])
                room = self.rng.choice(self.rooms)
                sub = f"c{index}-{self.result.churn_cycles}"
                await client.request(
                    "SUBSCRIBE", [("destination", f"/topic/room.{room}"), ("id", sub)]
                )
                await self.pause(self.rng.uniform(0.1, 1.0))
                await client.request("UNSUBSCRIBE", [("id", sub)])
                self.result.churn_cycles += 1
            except (StompError, OSError, TimeoutError) as exc:
                self.error(f"churner {index}", exc)
                if client is not None:
                    await client.close()
                client = None
            await self.pause(self.rng.uniform(0.05, 0.5))
        if client is not None:
            await client.close()

    async def sampler(
        self, pids: Callable[[], list[int]], redis_memory: Callable[[], tuple[int, int]]
    ) -> None:
        started = time.monotonic()
        next_report = started + self.config.report_seconds
        while not self.stop.is_set():
            await self.pause(self.config.sample_seconds)
            used, lasting = await asyncio.to_thread(redis_memory)
            sample = Sample(
                time.monotonic() - started,
                [_rss_mib(pid) for pid in pids()],
                [_fds(pid) for pid in pids()],
                used / 2**20,
                lasting,
            )
            self.result.samples.append(sample)
            if time.monotonic() >= next_report or self.stop.is_set():
                next_report += self.config.report_seconds
                await self.report(sample)

    async def report(self, sample: Sample) -> None:
        lat = sorted(self.latencies)
        self.latencies = []
        if lat:
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            latency = f"{p50 * 1e3:6.1f} {p99 * 1e3:6.1f} {lat[-1] * 1e3:7.1f}"
        else:
            latency = f"{'-':>6} {'-':>6} {'-':>7}"
        stored = await asyncio.to_thread(self.count_stored)
        r = self.result
        rss = "/".join(f"{v:.0f}" for v in sample.rss_mib)
        fds = "/".join(str(v) for v in sample.fds)
        print(
            f"{sample.at / 60:5.1f} {rss:>9} {fds:>7} {sample.redis_mib:7.2f} "
            f"{sample.redis_lasting_keys:>6}  {latency}  "
            f"{r.sent:>7} {r.receipted:>7} {r.delivered:>8} {stored:>7} {r.errors:>5}",
            flush=True,
        )


class Reader:
    """Follows one room from the start: every message once, reconnecting now and then."""

    def __init__(self, traffic: Traffic, room: str, index: int) -> None:
        self.traffic = traffic
        self.room = room
        self.index = index
        self.seen: dict[int, None] = {}
        self.last = 0
        self.port_index = index % len(traffic.ports)
        self.more = False

    def on_message(self, frame: Frame) -> None:
        if frame.header("event-type") != "message":
            return
        raw = frame.header(stomp_headers.MESSAGE_ID)
        if raw is None:
            return
        self.take(int(raw), frame)

    def take(self, message_id: int, frame: Frame | None) -> None:
        result = self.traffic.result
        if message_id in self.seen:
            result.duplicated += 1
            return
        self.seen[message_id] = None
        result.delivered += 1
        if message_id < self.last:
            result.reordered += 1
        self.last = max(self.last, message_id)
        if frame is None:
            return
        if frame.header(stomp_headers.REPLAY_MORE) is not None:
            self.more = True
        if frame.header(stomp_headers.REPLAY) is None:
            client_id = frame.header("client-id")
            sent = self.traffic.sent_at.get(client_id or "")
            if sent is not None:
                self.traffic.latencies.append(time.monotonic() - sent)

    async def subscribe(self, client: Client) -> None:
        headers = [("destination", f"/topic/room.{self.room}"), ("id", "room")]
        headers.append(("cur-max-message-id", str(self.last)))
        await client.request("SUBSCRIBE", headers)

    async def catch_up_by_history(self, base_url: str) -> None:
        """A replay that said "more": the rest through the history API."""
        self.more = False
        self.traffic.result.replay_more += 1
        ids = await asyncio.to_thread(history_after, base_url, self.room, self.last)
        for message_id in ids:
            self.take(message_id, None)

    async def run(self, base_urls: list[str]) -> None:
        traffic = self.traffic
        client: Client | None = None
        next_switch = time.monotonic() + traffic.rng.uniform(0.5, 1.5) * (
            traffic.config.reconnect_seconds
        )
        while not traffic.stop.is_set():
            try:
                if client is None or client.closed.is_set():
                    client = Client(traffic.ports[self.port_index], self.on_message)
                    await client.open(USERS["reader"])
                    await self.subscribe(client)
                if self.more:
                    await self.catch_up_by_history(base_urls[self.port_index])
                if self.last and traffic.rng.random() < 0.3:
                    await client.request(
                        "SEND",
                        [
                            ("destination", f"/app/rooms/{self.room}/read"),
                            ("content-type", "application/json"),
                        ],
                        json.dumps({"message_id": str(self.last)}).encode(),
                    )
                if time.monotonic() >= next_switch:
                    next_switch = time.monotonic() + traffic.rng.uniform(0.5, 1.5) * (
                        traffic.config.reconnect_seconds
                    )
                    await client.close()
                    client = None
                    traffic.result.reconnects += 1
                    self.port_index = (self.port_index + 1) % len(traffic.ports)
            except (StompError, OSError, TimeoutError) as exc:
                traffic.error(f"reader {self.room}/{self.index}", exc)
                if client is not None:
                    await client.close()
                client = None
            await traffic.pause(traffic.rng.uniform(0.5, 1.5))
        # stay until everything receipted came (or the drain deadline)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(m in self.seen for m in traffic.receipted[self.room]):
                break
            try:
                if client is None or client.closed.is_set():
                    client = Client(traffic.ports[self.port_index], self.on_message)
                    await client.open(USERS["reader"])
                    await self.subscribe(client)
                if self.more:
                    await self.catch_up_by_history(base_urls[self.port_index])
            except (StompError, OSError, TimeoutError) as exc:
                traffic.error(f"reader {self.room}/{self.index} (drain)", exc)
                client = None
            await asyncio.sleep(0.2)
        if client is not None:
            await client.close()


ROOM_ORDER = ("held", "skipped", "dropped")


def _room_order(base_url: str) -> dict[str, float]:
    """A node's ``stompgate_room_order_*_total`` counters."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ROOM_ORDER:
            if line.startswith(f"stompgate_room_order_{name}_total "):
                found[name] = float(line.split()[1])
    return found


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def trend(values: list[float], warmup: float, limit: float, slack: float) -> str:
    """Verdict on a series of samples: the median of its last third against its middle third
    (after the warm-up part): growth past ``slack`` (absolute) is GROWING; past ``limit`` (a
    fraction of the level) but within the slack, "rising" (said, not failed)."""
    usable = values[int(len(values) * warmup) :]
    if len(usable) < 4:
        return "too short to tell"
    third = max(1, len(usable) // 3)
    middle = statistics.median(usable[-2 * third : -third] or usable[:third])
    last = statistics.median(usable[-third:])
    growth = last - middle
    if growth > slack:
        verdict = "GROWING"
    elif growth > middle * limit:
        verdict = f"rising, within the slack of {slack:g}"
    else:
        verdict = "flat"
    return f"{verdict} (median {middle:.1f} -> {last:.1f})"


def check(traffic: Traffic, stored_rows: list[tuple[int, str, str, str]]) -> None:
    result = traffic.result
    stored_ids: dict[int, int] = {}
    stored_clients: dict[str, int] = {}
    for message_id, _room, _sender, client_id in stored_rows:
        stored_ids[message_id] = stored_ids.get(message_id, 0) + 1
        stored_clients[client_id] = stored_clients.get(client_id, 0) + 1
    result.stored = len(stored_rows)
    for room, posts in traffic.receipted.items():
        for message_id, client_id in posts.items():
            if stored_ids.get(message_id, 0) == 0:
                result.lost_stored += 1
            if stored_clients.get(client_id, 0) > 1:
                result.duplicated += 1
            for reader in traffic.readers:
                if reader.room == room and message_id not in reader.seen:
                    result.lost_delivered += 1
    config = traffic.config
    series: dict[str, tuple[list[float], float]] = {}
    nodes = len(traffic.ports)
    for node in range(nodes):
        series[f"node {node} RSS MiB"] = (
            [s.rss_mib[node] for s in result.samples],
            config.rss_slack_mib,
        )
        series[f"node {node} fds"] = ([float(s.fds[node]) for s in result.samples], config.fd_slack)
    series["Redis used_memory MiB"] = (
        [s.redis_mib for s in result.samples],
        config.redis_slack_mib,
    )
    series["Redis keys without a TTL"] = (
        [float(s.redis_lasting_keys) for s in result.samples],
        config.redis_key_slack,
    )
    for name, (values, slack) in series.items():
        result.verdicts[name] = trend(values, config.warmup_fraction, config.growth_limit, slack)


# -- the deployment ----------------------------------------------------------------------------


async def run(config: SoakConfig) -> SoakResult:
    """Start everything, run the traffic for ``config.minutes``, check, stop everything."""
    from tests.support.private_redis import PrivateRedis  # a private redis-server

    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="stompgate-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    store_path = log_dir / "soak.sqlite3"
    store_url = f"sqlite:///{store_path}"
    vhost = create_vhost("stompgate-soak")
    redis = PrivateRedis()
    url = amqp_url(vhost)
    env = {
        "STOMPGATE_REDIS_URL": redis.url,
        "STOMPGATE_REDIS_PREFIX": "soak:",
        "STOMPGATE_STORE": store_url,
        "STOMPGATE_LOG_LEVEL": "WARNING",
    }
    nodes = [GatewayProcess(amqp_url=url, node_id=f"soak-{n}", env=env) for n in range(2)]
    worker = WorkerProcess(amqp_url=url, store_url=store_url)
    started: list[GatewayProcess | WorkerProcess] = []
    try:
        worker.start(log_dir)
        started.append(worker)
        for node in nodes:
            node.start(log_dir)
            started.append(node)
        rooms = [f"soak{uuid.uuid4().hex[:6]}{n}" for n in range(config.rooms)]
        traffic = Traffic(
            config, [n.stomp_port for n in nodes], rooms, lambda: len(store_rows(store_path))
        )
        print(
            f"soak: {config.minutes:g} min, 2 gateway nodes + persist worker, rooms {rooms}, "
            f"logs in {log_dir}",
            flush=True,
        )
        print(
            "  min  RSS MiB     fds Redis: MiB keys*  lat ms p50    p99     max     sent"
            " receipted delivered  stored errors   (*without a TTL)",
            flush=True,
        )
        for room in rooms:
            for index in range(config.readers_per_room):
                traffic.readers.append(Reader(traffic, room, index))

        def pids() -> list[int]:
            return [n.process.pid if n.process is not None else 0 for n in nodes]

        def redis_memory() -> tuple[int, int]:
            used = int(redis.client.info("memory")["used_memory"])
            space = redis.client.info("keyspace").get("db0", {})
            return used, int(space.get("keys", 0)) - int(space.get("expires", 0))

        base_urls = [n.http_url for n in nodes]
        tasks = [asyncio.create_task(r.run(base_urls)) for r in traffic.readers]
        await asyncio.sleep(2)  # the readers are subscribed before the first post
        tasks += [
            asyncio.create_task(traffic.poster(room, node.stomp_port))
            for room in rooms
            for node in nodes
        ]
        tasks += [asyncio.create_task(traffic.churner(i)) for i in range(config.churners)]
        tasks.append(asyncio.create_task(traffic.sampler(pids, redis_memory)))
        await asyncio.sleep(config.minutes * 60)
        traffic.stop.set()
        await asyncio.gather(*tasks)
        # everything receipted reaches the store (or the deadline says it did not)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(store_rows(store_path)) >= traffic.result.receipted:
                break
            await asyncio.sleep(0.5)
        check(traffic, store_rows(store_path))
        for node in nodes:
            for name, value in (await asyncio.to_thread(_room_order, node.http_url)).items():
                traffic.result.room_order[name] = traffic.result.room_order.get(name, 0) + value
        return traffic.result
    finally:
        for proc in reversed(started):
            proc.stop()
        redis.close()
        delete_vhost(vhost)


def verdict(result: SoakResult) -> str:
    lines = [
        f"sent {result.sent}, receipted {result.receipted}, delivered {result.delivered} "
        f"(to the readers, replays included), stored {result.stored}, errors "
        f"{result.errors}; reader reconnects {result.reconnects}, churn cycles "
        f"{result.churn_cycles}, replays past the limit {result.replay_more}",
        f"receipted but not stored: {result.lost_stored}; receipted but missed by a reader: "
        f"{result.lost_delivered}; duplicated: {result.duplicated}; delivered out of id order: "
        f"{result.reordered}",
    ]
    order = ", ".join(f"{name} {result.room_order.get(name, 0):.0f}" for name in ROOM_ORDER)
    lines.append(f"room order (both nodes): {order}")
    lines += [f"trend {name}: {v}" for name, v in result.verdicts.items()]
    lines += [f"error: {text}" for text in result.error_texts]
    ok = result.correct and result.bounded
    lines.append(
        "VERDICT: "
        + ("pass" if ok else "FAIL")
        + ("" if result.correct else " (lost or duplicated posts)")
        + ("" if result.bounded else " (a resource keeps growing)")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", DEFAULT_MINUTES)),
        help="how long the traffic runs (default: $SOAK_MINUTES or %(default)s)",
    )
    parser.add_argument("--rooms", type=int, default=SoakConfig.rooms)
    parser.add_argument("--post-rate", type=float, default=SoakConfig.post_rate)
    parser.add_argument("--readers-per-room", type=int, default=SoakConfig.readers_per_room)
    parser.add_argument("--reconnect-seconds", type=float, default=SoakConfig.reconnect_seconds)
    parser.add_argument("--churners", type=int, default=SoakConfig.churners)
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rooms < 1 or args.post_rate <= 0:
        parser.error("--minutes, --rooms and --post-rate must be positive")
    if args.readers_per_room < 1 or args.reconnect_seconds <= 0 or args.churners < 0:
        parser.error("--readers-per-room >= 1, --reconnect-seconds > 0, --churners >= 0")
    config = SoakConfig(
        minutes=args.minutes,
        rooms=args.rooms,
        post_rate=args.post_rate,
        readers_per_room=args.readers_per_room,
        reconnect_seconds=args.reconnect_seconds,
        churners=args.churners,
        log_dir=args.log_dir,
    )
    result = asyncio.run(run(config))
    print(verdict(result))
    return 0 if result.correct and result.bounded else 1


if __name__ == "__main__":
    sys.exit(main())
