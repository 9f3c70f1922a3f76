"""RSS per idle WebSocket session, heart-beats on, for each WebSocket path (``--ws-impl``).

    python -m benchmarks.ws_sessions [--impl lean aiohttp] [--sessions 10000] [--rounds 1]
    python -m benchmarks.ws_sessions --sends 2000 [--senders 50]   # CPU per SEND instead

For each path: a fresh gateway process (limits off, as ``make bench``) on a private vhost;
``--warmup`` sessions first (what the first sessions make once: caches, arenas), then the
gateway's RSS; then ``--sessions`` more, each a WebSocket that sends CONNECT with
``heart-beat:10000,10000`` and stays idle but for a heart-beat EOL every 5 s; ``--settle``
seconds later, RSS again and the gateway's CPU over that time (heart-beat and timeout
bookkeeping). Prints KiB of RSS per session and the CPU % of one core. The client is this
process (raw sockets on uvloop, bytes read and dropped); it needs ``sessions`` + a few
hundred file descriptors, as does the gateway (the soft limit is raised to the hard one).

With ``--sends``: ``--senders`` sessions each write that many SENDs to a topic nobody is
subscribed to, one per WebSocket message, the last with a receipt; the gateway's CPU from
the first write to the last RECEIPT over the SENDs is µs per SEND (the WebSocket read, the
STOMP parse, the publish and its confirm). CPU figures are noisy on a shared machine: run
several ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import cast

from gateway.transport.wsframe import unmask_int
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")
GATEWAY_ENV = {
    "STOMPGATE_FRAMES_PER_SECOND": "0",
    "STOMPGATE_BYTES_PER_SECOND": "0",
    "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0",
    "STOMPGATE_MAX_CONNECTIONS_PER_USER": "0",
}
CONNECT = (
    b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n"
    b"heart-beat:10000,10000\n\n\x00"
)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def masked(payload: bytes, opcode: int = 0x1) -> bytes:
    key = os.urandom(4)
    size = len(payload)
    head = (
        bytes((0x80 | opcode, 0x80 | size))
        if size < 126
        else bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    )
    return head + key + unmask_int(payload, key)


class IdleClient(asyncio.Protocol):
    """Upgrade, CONNECT, then drop whatever arrives."""

    def __init__(self, port: int, connected: asyncio.Future[None]) -> None:
        self.port = port
        self.connected = connected
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.connected.done():
            if b"RECEIPT" in data and not self.receipt.done():
                self.receipt.set_result(None)
            return
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.connected.set_exception(RuntimeError(self.buffer[:200].decode("latin-1")))
                return
            self.upgraded = True
            self.buffer = self.buffer[end + 4 :]
            assert self.transport is not None
            self.transport.write(masked(CONNECT))
        if b"CONNECTED" in self.buffer:
            self.buffer = b""
            self.connected.set_result(None)
            self.receipt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        elif b"ERROR" in self.buffer:
            self.connected.set_exception(RuntimeError(self.buffer[:300].decode("latin-1")))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed before CONNECTED"))


async def open_sessions(port: int, count: int, clients: list[IdleClient]) -> None:
    loop = asyncio.get_running_loop()

    async def one() -> None:
        connected: asyncio.Future[None] = loop.create_future()
        client = IdleClient(port, connected)
        await loop.create_connection(lambda: client, "127.0.0.1", port)
        await asyncio.wait_for(connected, 60)
        clients.append(client)

    for start in range(0, count, 200):
        await asyncio.gather(*(one() for _ in range(min(200, count - start))))


async def heart_beats(clients: list[IdleClient], stop: asyncio.Event) -> None:
    beat = masked(b"\n")
    while not stop.is_set():
        for client in clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.write(beat)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)


async def measure(impl: str, args: argparse.Namespace, amqp_url: str, log_dir: Path) -> str:
    node = GatewayProcess(
        amqp_url=amqp_url,
        node_id=f"wsmem-{impl}-{os.getpid()}",
        extra_args=("--log-level", "WARNING"),
        env=GATEWAY_ENV,
        ws_impl=impl,
    )
    node.start(log_dir)
    assert node.process is not None
    pid = node.process.pid
    clients: list[IdleClient] = []
    stop = asyncio.Event()
    beats = asyncio.create_task(heart_beats(clients, stop))
    try:
        await open_sessions(node.http_port, args.warmup, clients)
        await asyncio.sleep(2)
        before = rss_bytes(pid)
        started = time.monotonic()
        await open_sessions(node.http_port, args.sessions, clients)
        opened_in = time.monotonic() - started
        await asyncio.sleep(2)
        cpu0 = cpu_seconds(pid)
        await asyncio.sleep(args.settle)
        cpu1 = cpu_seconds(pid)
        after = rss_bytes(pid)
        alive = sum(1 for c in clients if c.transport is not None and not c.transport.is_closing())
    finally:
        stop.set()
        await beats
        for client in clients:
            if client.transport is not None:
                client.transport.abort()
        node.stop()
    per = (after - before) / args.sessions / 1024
    cpu = (cpu1 - cpu0) / args.settle * 100
    return (
        f"{impl:8} {args.sessions:8} {per:10.2f} {cpu:9.2f} {opened_in:9.1f}"
        f" {alive:7}/{args.warmup + args.sessions}"
    )


async def measure_sends(impl: str, args: argparse.Namespace, amqp_url: str, log_dir: Path) -> str:
    node = GatewayProcess(
        amqp_url=amqp_url,
        node_id=f"wssend-{impl}-{os.getpid()}",
        extra_args=("--log-level", "WARNING"),
        env=GATEWAY_ENV,
        ws_impl=impl,
    )
    node.start(log_dir)
    assert node.process is not None
    pid = node.process.pid
    clients: list[IdleClient] = []
    send = masked(b"SEND\ndestination:/topic/bench.ws-sends\n\n" + b"x" * 200 + b"\x00")
    last = masked(b"SEND\ndestination:/topic/bench.ws-sends\nreceipt:end\n\nend\x00")
    try:
        await open_sessions(node.http_port, args.senders, clients)
        await asyncio.sleep(1)
        cpu0 = cpu_seconds(pid)
        started = time.monotonic()
        for client in clients:
            assert client.transport is not None
            for _ in range(args.sends - 1):
                client.transport.write(send)
            client.transport.write(last)
        await asyncio.wait_for(asyncio.gather(*(c.receipt for c in clients)), 300)
        elapsed = time.monotonic() - started
        cpu1 = cpu_seconds(pid)
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()
        node.stop()
    total = args.senders * args.sends
    return (
        f"{impl:8} {total:8} SENDs {(cpu1 - cpu0) / total * 1e6:8.1f} µs/SEND (gateway CPU)"
        f" {total / elapsed:9.0f} SENDs/s"
    )


async def run(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    vhost = rabbit.create_vhost()
    try:
        with tempfile.TemporaryDirectory(prefix="ws-sessions-") as tmp:
            url, logs = rabbit.amqp_url(vhost), Path(tmp)
            if not args.sends:
                print(
                    f"{'path':8} {'sessions':>8} {'KiB/sess':>10} {'CPU %':>9} {'open s':>9} alive"
                )
            for _ in range(args.rounds):
                for impl in args.impl:
                    if args.sends:
                        print(await measure_sends(impl, args, url, logs), flush=True)
                    else:
                        print(await measure(impl, args, url, logs), flush=True)
    finally:
        rabbit.delete_vhost(vhost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", nargs="+", default=["lean", "aiohttp"])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sends", type=int, default=0, help="SENDs per session (CPU mode)")
    parser.add_argument("--senders", type=int, default=50)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the gateway inherits it
    need = args.sessions + args.warmup + 256
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(f"needs {need} file descriptors; the hard limit is {hard}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
