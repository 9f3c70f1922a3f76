"""Idle WebSocket sessions with heart-beats on one gateway node: ``make bench-sessions``.

``python -m benchmarks.bench_sessions [--sessions 100000] [--heartbeat 10000] [--measure 30]
[--ws-impl lean aiohttp] [--rounds 1] [--warmup 0] [--gateway-arg=--some-flag ...]``
``python -m benchmarks.bench_sessions --sends 2000 [--senders 50] [--ws-impl ...]``

Per run, one fresh gateway process (``python -m gateway --auth dev``, the connection caps and
rate limits off, ``--log-level WARNING``, WebSockets served by the run's ``--ws-impl``; every
``--gateway-arg`` is passed on to it) on a fresh vhost of the shared RabbitMQ. A run is made
for each WebSocket path named by ``--ws-impl`` (default ``lean``; ``--ws-impl lean aiohttp``
compares the two, each on a gateway of its own, one after the other), all of them
``--rounds`` times, and a table of every run closes the output. Load processes (this module
with ``client``, uvloop, raw sockets: no WebSocket library) open the sessions: the HTTP
upgrade (``v12.stomp``), ``CONNECT`` with ``heart-beat:<ms>,<ms>``, then one heart-beat EOL
per session every ``--heartbeat`` ms, spread evenly over the interval. Each load process
holds at most its open-files limit of sockets and connects from a loopback address of its
own (``127.0.1.<n>``), so no process runs out of descriptors and no source address runs out
of ephemeral ports. ``--warmup N`` first opens N sessions from a load process of their own
(``127.0.2.1``) before the RSS baseline, so what the first sessions allocate once (caches,
arenas) is not charged to the measured ones; they stay open and beat through the run.

Measured, once every session is open and ``--settle`` seconds have passed:

* **RSS per session**: the gateway's ``VmRSS`` after minus before the sessions, divided by
  the sessions (target: 10 KiB);
* **idle CPU**: the gateway's utime+stime over ``--measure`` seconds of nothing but
  heart-beats both ways and its timeout bookkeeping, as % of one core (target: below 5 %),
  with the heart-beats per second each way and the load processes' own CPU beside it.

Sessions the server closed while idle make the figures void (printed). The gateway needs an
open-files limit above the sessions: the benchmark raises its own soft limit to the hard one
(the gateway inherits it) and tries to raise the hard one; where it cannot (no
CAP_SYS_RESOURCE) it says what the limit allows and stops; ``--sessions`` runs fewer.

With ``--sends N`` the run measures SENDs instead of idle sessions: ``--senders`` sessions
(one load process) each write N SENDs of 200 bytes to a topic nobody is subscribed to, one
per WebSocket message, all at once, the last with a receipt; the gateway's CPU from the
first write until every session has its RECEIPT, over the SENDs, is the CPU per SEND (the
WebSocket read, the STOMP parse, the publish and its confirm), printed with the SENDs per
second. CPU figures are noisy on a shared machine: run several ``--rounds``.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from benchmarks.bench_gateway import GATEWAY_ENV, cpu_seconds, cpu_split, rss_bytes, sleeps
from tests.support.gateway_proc import WS_IMPLS, GatewayProcess
from tests.support.rabbit import amqp_url, create_vhost, delete_vhost

ROOT = Path(__file__).resolve().parents[1]
#: descriptors a process keeps for itself beyond its sockets
SPARE_FDS = 512
#: IP_BIND_ADDRESS_NO_PORT (Linux): the port is chosen at connect, per 4-tuple
IP_BIND_ADDRESS_NO_PORT = 24
#: what the RECEIPT of the last SEND of a burst starts with
RECEIPT = b"RECEIPT\nreceipt-id:end\n"
TARGET_RSS = 10 * 1024
TARGET_CPU_PCT = 5.0
TARGET_SESSIONS = 100_000  # issue 19: sessions one node should hold


# -- the load processes ----------------------------------------------------------------------


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final, masked client frame. The mask is all zeros (valid: the server XORs with it),
    so the payload goes as it is and every frame can be built once."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + b"\x00\x00\x00\x00" + payload


def upgrade_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    ).encode()


class Stats:
    """Counters of one load process."""

    def __init__(self) -> None:
        self.opened = 0
        self.failed = 0
        self.first_error = ""
        self.lost = 0  # closed after CONNECTED: the server dropped an idle session
        self.received = 0  # data_received calls after CONNECTED (heart-beats, mostly)
        self.sent = 0  # heart-beats written


class IdleSession(asyncio.Protocol):
    """Upgrade, CONNECT, then nothing but heart-beats (or, told to, a burst of SENDs whose
    last RECEIPT it waits for); counts what the server sends."""

    __slots__ = (
        "_buf",
        "_connect",
        "_connected",
        "_receipt",
        "_request",
        "_stats",
        "_tail",
        "_transport",
        "_waiter",
    )

    def __init__(self, request: bytes, connect: bytes, stats: Stats) -> None:
        self._request = request
        self._connect = connect
        self._stats = stats
        self._buf = b""
        self._connected = False
        self._receipt: asyncio.Future[None] | None = None
        self._tail = b""  # the end of the last read, while a RECEIPT is awaited
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._connected:
            self._stats.received += 1
            if self._receipt is not None and not self._receipt.done():
                if RECEIPT in self._tail + data:  # also one split over two reads
                    self._receipt.set_result(None)
                self._tail = data[-len(RECEIPT) :]
            return
        self._buf += data
        head_end = self._buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        if not self._buf.startswith(b"HTTP/1.1 101"):
            self._fail(self._buf[: self._buf.find(b"\r\n")].decode(errors="replace"))
            return
        rest = self._buf[head_end + 4 :]
        if self._request:  # the 101 came: CONNECT once
            self._request = b""
            assert self._transport is not None
            self._transport.write(self._connect)
        if b"CONNECTED" in rest:
            self._connected = True
            self._buf = b""
            if not self._waiter.done():
                self._waiter.set_result(None)
        elif b"ERROR" in rest:
            self._fail(rest[:200].decode(errors="replace"))

    def _fail(self, reason: str) -> None:
        if not self._waiter.done():
            self._waiter.set_exception(ConnectionError(reason))
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connected:
            self._stats.lost += 1
            if self._receipt is not None and not self._receipt.done():
                self._receipt.set_exception(ConnectionError(f"closed before the RECEIPT: {exc}"))
        elif not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"closed during setup: {exc}"))

    async def ready(self) -> None:
        await self._waiter

    def beat(self, frame: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)
            self._stats.sent += 1

    def send_burst(self, frames: bytes) -> asyncio.Future[None]:
        """Write ``frames`` (SENDs, the last with a receipt); the future is done at the
        RECEIPT."""
        self._receipt = asyncio.get_running_loop().create_future()
        self._tail = b""
        assert self._transport is not None
        self._transport.write(frames)
        return self._receipt

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def open_session(
    loop: asyncio.AbstractEventLoop, cfg: dict[str, Any], source: str, stats: Stats
) -> IdleSession:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await loop.sock_connect(sock, (cfg["host"], cfg["port"]))
    except BaseException:
        sock.close()
        raise
    request = upgrade_request(cfg["host"], cfg["port"], cfg["path"])
    hb = int(cfg["heartbeat"])
    connect = ws_frame(
        (
            f"CONNECT\naccept-version:1.2\nhost:{cfg['vhost']}\nlogin:guest\npasscode:guest\n"
            f"heart-beat:{hb},{hb}\n\n\x00"
        ).encode()
    )
    _, session = await loop.create_connection(
        lambda: IdleSession(request, connect, stats), sock=sock
    )
    await asyncio.wait_for(session.ready(), cfg["timeout"])
    return session


async def beat_forever(sessions: list[IdleSession], heartbeat_ms: int, tick: float) -> None:
    """Each session's EOL once per interval, sessions spread evenly over it (one slice a
    tick): ``len(sessions) * tick / interval`` writes a tick."""
    frame = ws_frame(b"\n")
    slots = max(1, round(heartbeat_ms / 1000 / tick))
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        n += 1
        delay = start + n * tick - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        slot = n % slots
        for session in sessions[slot::slots]:
            session.beat(frame)


async def open_all(
    cfg: dict[str, Any], stats: Stats, sessions: list[IdleSession]
) -> asyncio.Task[None]:
    """Open ``cfg["count"]`` sessions into ``sessions``, ``cfg["concurrency"]`` at a time
    (failures counted in ``stats``); returns the task that heart-beats them. Heart-beats
    start with the first session: one opened early must not time out while the others
    connect."""
    loop = asyncio.get_running_loop()
    todo = iter(range(int(cfg["count"])))

    async def worker() -> None:
        for _ in todo:
            try:
                sessions.append(await open_session(loop, cfg, cfg["source"], stats))
                stats.opened += 1
            except (OSError, TimeoutError) as exc:
                stats.failed += 1
                stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"

    beater = loop.create_task(beat_forever(sessions, int(cfg["heartbeat"]), 0.05))
    await asyncio.gather(*(worker() for _ in range(int(cfg["concurrency"]))))
    return beater


SEND_DESTINATION = "/topic/bench.sessions-sends"


def sends_burst(count: int) -> bytes:
    """``count`` SENDs of 200 bytes, one WebSocket message each, the last with a receipt."""
    plain = ws_frame(f"SEND\ndestination:{SEND_DESTINATION}\n\n".encode() + b"x" * 200 + b"\x00")
    last = ws_frame(f"SEND\ndestination:{SEND_DESTINATION}\nreceipt:end\n\nend\x00".encode())
    return plain * (count - 1) + last


async def send_all(sessions: list[IdleSession], count: int) -> float:
    """Every session writes ``count`` SENDs at once; the seconds until each has its RECEIPT
    (the caller bounds the wait)."""
    burst = sends_burst(count)
    started = time.monotonic()
    await asyncio.gather(*(session.send_burst(burst) for session in sessions))
    return time.monotonic() - started


async def client_main(cfg: dict[str, Any]) -> None:
    """One load process: say ``ready`` with the counts once all sessions are open, then a
    ``report`` line per ``report`` line on stdin, a ``sent`` line (seconds) once every
    session has the RECEIPT of ``sends <n>`` SENDs; exit at ``close`` or end of input."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    sessions: list[IdleSession] = []
    started = time.monotonic()
    beater = await open_all(cfg, stats, sessions)
    emit(
        {
            "event": "ready",
            "opened": stats.opened,
            "failed": stats.failed,
            "first_error": stats.first_error,
            "seconds": time.monotonic() - started,
        }
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "report":
            emit(
                {
                    "event": "report",
                    "lost": stats.lost,
                    "received": stats.received,
                    "sent": stats.sent,
                    "open": stats.opened - stats.lost,
                }
            )
        elif line.startswith("sends "):
            async with asyncio.timeout(float(cfg.get("send_timeout", 300.0))):
                seconds = await send_all(sessions, int(line.split()[1]))
            emit({"event": "sent", "seconds": seconds})
        elif line in ("close", ""):
            break
    beater.cancel()
    for session in sessions:
        session.abort()
    emit({"event": "closed"})


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run_client(config: str) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cfg = json.loads(config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(client_main(cfg))
    else:
        uvloop.run(client_main(cfg))


class LoadProcess:
    """One ``python -m benchmarks.bench_sessions client`` child, driven line by line."""

    def __init__(self, cfg: dict[str, Any], log: Path) -> None:
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_sessions", "client", json.dumps(cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=ROOT,
            )
        self.log = log
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"load process silent for {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    tail = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"load process exited:\n{tail}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        return event

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, TimeoutError, RuntimeError):
                self.send("close")
                self.read(30)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the benchmark ---------------------------------------------------------------------------


def nofile_for(wanted: int) -> tuple[int, int]:
    """Raise this process's open-files limit (children inherit it) to at least ``wanted`` if
    allowed: the soft one up to the hard one, the hard one where the process may. Returns
    the (soft, hard) limits in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            soft, hard = wanted, wanted
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass
class SessionsResult:
    ws_impl: str
    sessions: int
    failed: int
    first_error: str
    setup_s: float
    rss_before: int
    rss_after: int
    cpu_pct: float  # gateway, % of one core, while idle
    kernel_pct: float  # of which in the kernel (stime: the heart-beats' system calls)
    sleeps_per_s: float
    beats_in_per_s: float  # heart-beats the load processes wrote, a second
    beats_out_per_s: float  # what the load processes received, a second
    load_cpu_pct: float
    lost: int
    warmup: int = 0

    @property
    def rss_per_session(self) -> float:
        return (self.rss_after - self.rss_before) / self.sessions if self.sessions else math.nan


@dataclass
class SendsResult:
    ws_impl: str
    sends: int  # SENDs written, all senders together
    seconds: float  # from the first write to the last RECEIPT
    cpu_s: float  # the gateway's, over those seconds

    @property
    def us_per_send(self) -> float:
        return self.cpu_s / self.sends * 1e6

    @property
    def sends_per_s(self) -> float:
        return self.sends / self.seconds if self.seconds else math.nan


def load_config(port: int, source: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "path": "/ws",
        "vhost": "/",
        "source": source,
        "count": count,
        "heartbeat": args.heartbeat,
        "concurrency": args.concurrency,
        "timeout": 60.0,
        "send_timeout": args.send_timeout,
    }


def start_gateway(
    args: argparse.Namespace, ws_impl: str, vhost: str, log_dir: Path
) -> GatewayProcess:
    gateway = GatewayProcess(
        amqp_url=amqp_url(vhost),
        node_id=f"sessions-{ws_impl}-{os.getpid()}",
        extra_args=("--log-level", "WARNING", *args.gateway_arg),
        env=GATEWAY_ENV,
        ws_impl=ws_impl,
    )
    gateway.start(log_dir)
    return gateway


def ready_counts(loads: list[LoadProcess], timeout: float) -> tuple[int, int, str]:
    """(opened, failed, the first error) once every load process said ``ready``."""
    ready = [load.read(timeout) for load in loads]
    opened = sum(int(r["opened"]) for r in ready)
    failed = sum(int(r["failed"]) for r in ready)
    first_error = next((str(r["first_error"]) for r in ready if r["first_error"]), "")
    return opened, failed, first_error


def measure(args: argparse.Namespace, ws_impl: str, log_dir: Path) -> SessionsResult:
    per_process = max(
        1, min(args.per_process, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - SPARE_FDS)
    )
    processes = math.ceil(args.sessions / per_process)
    vhost = create_vhost("stompgate-sessions")
    loads: list[LoadProcess] = []
    gateway: GatewayProcess | None = None
    try:
        gateway = start_gateway(args, ws_impl, vhost, log_dir)
        assert gateway.process is not None
        pid = gateway.process.pid
        if args.warmup:
            cfg = load_config(gateway.http_port, "127.0.2.1", args.warmup, args)
            loads.append(LoadProcess(cfg, log_dir / f"load-{ws_impl}-warmup.log"))
            warm, warm_failed, warm_error = ready_counts(loads, args.setup_timeout)
            print(
                f"[{ws_impl}] {warm:,} warm-up sessions open"
                f"{f' ({warm_failed:,} failed: {warm_error})' if warm_failed else ''}",
                flush=True,
            )
        time.sleep(args.settle)
        rss_before = rss_bytes(pid)
        left = args.sessions
        measured: list[LoadProcess] = []
        for i in range(processes):
            count = min(per_process, left)
            left -= count
            cfg = load_config(gateway.http_port, f"127.0.1.{i + 1}", count, args)
            measured.append(LoadProcess(cfg, log_dir / f"load-{ws_impl}-{i}.log"))
        loads += measured
        started = time.monotonic()
        opened, failed, first_error = ready_counts(measured, args.setup_timeout)
        setup_s = time.monotonic() - started
        print(
            f"[{ws_impl}] {opened:,} sessions open ({failed:,} failed"
            f"{': ' + first_error if failed else ''}) in {setup_s:.1f} s from"
            f" {len(measured)} load process(es); settling {args.settle:g} s",
            flush=True,
        )
        time.sleep(args.settle)
        rss_after = rss_bytes(pid)
        for load in loads:
            load.send("report")
        before = [load.read(30) for load in loads]
        cpu0, sleeps0, kernel0 = cpu_seconds(pid), sleeps(pid), cpu_split(pid)[1]
        load0 = sum(cpu_seconds(load.pid) for load in loads)
        t0 = time.monotonic()
        time.sleep(args.measure)
        cpu1, sleeps1, kernel1 = cpu_seconds(pid), sleeps(pid), cpu_split(pid)[1]
        load1 = sum(cpu_seconds(load.pid) for load in loads)
        seconds = time.monotonic() - t0
        for load in loads:
            load.send("report")
        after = [load.read(30) for load in loads]
        rss_after = max(rss_after, rss_bytes(pid))
    finally:
        for load in loads:
            load.close()
        if gateway is not None:
            gateway.stop()
        delete_vhost(vhost)

    def total(reports: list[dict[str, Any]], key: str) -> int:
        return sum(int(r[key]) for r in reports)

    return SessionsResult(
        ws_impl=ws_impl,
        sessions=opened,
        failed=failed,
        first_error=first_error,
        setup_s=setup_s,
        rss_before=rss_before,
        rss_after=rss_after,
        cpu_pct=(cpu1 - cpu0) / seconds * 100,
        kernel_pct=(kernel1 - kernel0) / seconds * 100,
        sleeps_per_s=(sleeps1 - sleeps0) / seconds,
        beats_in_per_s=(total(after, "sent") - total(before, "sent")) / seconds,
        beats_out_per_s=(total(after, "received") - total(before, "received")) / seconds,
        load_cpu_pct=(load1 - load0) / seconds * 100,
        lost=total(after, "lost"),
        warmup=args.warmup,
    )


def measure_sends(args: argparse.Namespace, ws_impl: str, log_dir: Path) -> SendsResult:
    vhost = create_vhost("stompgate-sessions")
    load: LoadProcess | None = None
    gateway: GatewayProcess | None = None
    try:
        gateway = start_gateway(args, ws_impl, vhost, log_dir)
        assert gateway.process is not None
        pid = gateway.process.pid
        cfg = load_config(gateway.http_port, "127.0.1.1", args.senders, args)
        load = LoadProcess(cfg, log_dir / f"load-{ws_impl}-sends.log")
        opened, failed, first_error = ready_counts([load], args.setup_timeout)
        if failed:
            raise RuntimeError(f"{failed} of {args.senders} senders failed: {first_error}")
        time.sleep(1)
        cpu0 = cpu_seconds(pid)
        load.send(f"sends {args.sends}")
        sent = load.read(args.send_timeout + 30)
        cpu1 = cpu_seconds(pid)
    finally:
        if load is not None:
            load.close()
        if gateway is not None:
            gateway.stop()
        delete_vhost(vhost)
    return SendsResult(
        ws_impl=ws_impl,
        sends=opened * args.sends,
        seconds=float(sent["seconds"]),
        cpu_s=cpu1 - cpu0,
    )


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def report(r: SessionsResult, args: argparse.Namespace) -> None:
    per = r.rss_per_session
    print()
    print(f"{'metric':<52}{'figure':>16}  {'target':<12}result")
    print("-" * 90)
    print(
        f"{'RSS per idle session (gateway VmRSS delta)':<52}{per:>13,.0f} B  "
        f"{'<= 10,240 B':<12}{verdict(per <= TARGET_RSS)}"
    )
    print(
        f"{'CPU idle, heart-beats + timeouts, % of a core':<52}{r.cpu_pct:>15.2f}%  "
        f"{'< 5 %':<12}{verdict(r.cpu_pct < TARGET_CPU_PCT)}"
    )
    print(f"{'  of which in the kernel (system calls)':<52}{r.kernel_pct:>15.2f}%")
    if r.sessions:
        scale = TARGET_SESSIONS / r.sessions
        at_target = f"{r.cpu_pct * scale:.1f}% ({r.kernel_pct * scale:.1f}% kernel)"
        print(f"{f'  at {TARGET_SESSIONS:,} sessions, scaled linearly':<52}{at_target:>16}")
    beats_io = f"{r.beats_in_per_s:,.0f} / {r.beats_out_per_s:,.0f}"
    print(f"{'  heart-beats in / out per second':<52}{beats_io:>16}")
    beats = r.beats_in_per_s + r.beats_out_per_s
    if beats:
        per_beat = r.cpu_pct / 100 / beats * 1e6
        print(f"{'  gateway CPU per heart-beat (in or out)':<52}{per_beat:>13.1f} us")
    print(f"{'  gateway sleeps per second':<52}{r.sleeps_per_s:>16,.0f}")
    print(f"{'  load processes CPU, % of a core':<52}{r.load_cpu_pct:>15.1f}%")
    print(
        f"{'  sessions (setup s)':<52}{r.sessions:>16,}  ({r.setup_s:.1f} s;"
        f" RSS {r.rss_before / 2**20:.0f} -> {r.rss_after / 2**20:.0f} MiB)"
    )
    if r.lost or r.failed:
        print(
            f"VOID: {r.failed} sessions failed to open ({r.first_error}), {r.lost} dropped by the"
            " server while idle"
        )
    print(
        f"\n{args.sessions:,} sessions asked ({r.warmup:,} warm-up before them),"
        f" WebSocket path {r.ws_impl}, heart-beat {args.heartbeat} ms both ways,"
        f" {args.measure:g} s measured; gateway args: {' '.join(args.gateway_arg) or '(none)'}"
    )


def summary(results: list[SessionsResult]) -> str:
    """Every run in one table: the WebSocket paths side by side."""
    lines = [
        f"{'path':<8} {'sessions':>9} {'B/session':>10} {'CPU %':>7} {'setup s':>8} {'lost':>6}",
    ]
    for r in results:
        lines.append(
            f"{r.ws_impl:<8} {r.sessions:>9,} {r.rss_per_session:>10,.0f} {r.cpu_pct:>7.2f}"
            f" {r.setup_s:>8.1f} {r.lost + r.failed:>6}"
        )
    return "\n".join(lines)


def sends_line(r: SendsResult) -> str:
    return (
        f"{r.ws_impl:<8} {r.sends:>9,} SENDs {r.us_per_send:>8.1f} us/SEND (gateway CPU)"
        f" {r.sends_per_s:>9,.0f} SENDs/s"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sessions",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--sessions", type=int, default=TARGET_SESSIONS)
    p.add_argument("--heartbeat", type=int, default=10_000, help="ms, both ways (STOMP.js: 10000)")
    p.add_argument("--measure", type=float, default=30.0, help="seconds of idle measured")
    p.add_argument("--settle", type=float, default=5.0, help="seconds before each RSS sample")
    p.add_argument("--concurrency", type=int, default=200, help="handshakes at once per process")
    p.add_argument(
        "--per-process",
        type=int,
        default=50_000,
        help="sessions per load process at most (also bounded by its open-files limit)",
    )
    p.add_argument("--setup-timeout", type=float, default=900.0, help="seconds to open them all")
    p.add_argument(
        "--ws-impl",
        nargs="+",
        choices=WS_IMPLS,
        default=["lean"],
        help="the WebSocket path(s) to measure, each on a gateway of its own (default: lean)",
    )
    p.add_argument("--rounds", type=int, default=1, help="runs of every --ws-impl")
    p.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="sessions opened before the RSS baseline, not counted (they stay open)",
    )
    p.add_argument(
        "--sends",
        type=int,
        default=0,
        help="SENDs per sender: measure the gateway's CPU per SEND instead of idle sessions",
    )
    p.add_argument("--senders", type=int, default=50, help="sessions that SEND (with --sends)")
    p.add_argument(
        "--send-timeout", type=float, default=300.0, help="seconds the SENDs may take (--sends)"
    )
    p.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed on to `python -m gateway` (repeat; e.g. --gateway-arg=--ws-compress=true)",
    )
    args = p.parse_args(argv)
    if args.sessions < 1:
        p.error("--sessions must be at least 1")
    if args.heartbeat < 100:
        p.error("--heartbeat must be at least 100 ms")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must not be negative")
    if args.sends < 0:
        p.error("--sends must not be negative")
    if args.sends and args.senders < 1:
        p.error("--senders must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["client"]:
        run_client(argv[1])
        return
    args = parse_args(argv)
    sockets = args.senders if args.sends else args.sessions + args.warmup
    soft, hard = nofile_for(sockets + SPARE_FDS)
    print(f"RLIMIT_NOFILE {soft}/{hard} (soft/hard) for the gateway and the load processes")
    if soft < sockets + SPARE_FDS:
        raise SystemExit(
            f"the gateway needs an open-files limit above {sockets + SPARE_FDS:,} for"
            f" {sockets:,} sessions; this process may raise it only to {hard:,} (no"
            " CAP_SYS_RESOURCE). Raise the hard limit (ulimit -Hn, limits.conf, a container's"
            f" --ulimit nofile) or run fewer: --sessions {max(1, hard - SPARE_FDS):,}"
        )
    log_dir = Path(tempfile.mkdtemp(prefix="stompgate-sessions-"))
    results: list[SessionsResult] = []
    try:
        for _ in range(args.rounds):
            for ws_impl in args.ws_impl:
                if args.sends:
                    print(sends_line(measure_sends(args, ws_impl, log_dir)), flush=True)
                    continue
                result = measure(args, ws_impl, log_dir)
                report(result, args)
                results.append(result)
    except BaseException:
        print(f"logs in {log_dir}", file=sys.stderr)
        raise
    if len(results) > 1:
        print("\nevery run:\n" + summary(results))


if __name__ == "__main__":
    main()
