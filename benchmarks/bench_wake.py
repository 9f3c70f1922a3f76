"""What a lone frame costs the server: the price of being woken up (``make bench-wake``).

``python -m benchmarks.bench_wake [--sessions 100] [--rate 400] [--duration 10]``

At a moderate, steady load most frames arrive on their own, so each one wakes the server up.
This measures that cost side by side: the gateway (a fresh ``python -m gateway`` process,
STOMP over TCP, relaying to a private RabbitMQ node) and that node's own STOMP plugin. The
client, in this process, opens ``--sessions`` STOMP 1.2 sessions and then writes one frame at
a time, round-robin, ``--rate`` frames a second, evenly spaced:

* ``eol``: a heart-beat newline, the cheapest frame there is: the cost of a wake-up;
* ``send``: ``SEND /topic/wake.<n>`` with a 256-byte body and no subscriber; for the gateway
  that is a publish to RabbitMQ and its confirm (a second wake-up when the confirm comes back).

Printed per frame: server CPU (utime+stime from ``/proc``, the gateway process and beam.smp
for the gateway, beam.smp alone for the plugin) and the gateway's voluntary context switches
(how often it went to sleep). Compare with ``make bench-hotpath``, which runs the SEND path
in-process, with nothing to wake up. See docs/performance.md. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from benchmarks import broker as private_broker
from benchmarks.bench_gateway import cpu_seconds, raise_nofile, start_gateway

KINDS = ("eol", "send")
BODY = b"x" * 256


def voluntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


@dataclass
class Result:
    frames: int
    cpu_us: dict[str, float]  # process label -> CPU µs per frame
    sleeps: float | None  # voluntary context switches of the gateway per frame
    refused: int  # sessions the server closed or sent an ERROR to: the figures are void


async def open_sessions(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    sessions = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n"
            b"heart-beat:0,0\n\n\x00"
        )
        reply = await asyncio.wait_for(reader.readuntil(b"\x00"), 10)
        if not reply.startswith(b"CONNECTED"):
            raise SystemExit(f"CONNECT refused on port {port}: {reply[:200]!r}")
        sessions.append((reader, writer))
    return sessions


async def refused(reader: asyncio.StreamReader, wait: float | None = 0.01) -> bool:
    """Whether the server said ERROR or closed (nothing else is ever sent back here).

    Waits up to ``wait`` seconds for a reply (``None``: until there is one): silence is the
    answer ``False``.
    """
    try:
        data = await asyncio.wait_for(reader.read(65536), wait)
    except TimeoutError:
        return False
    return not data or b"ERROR" in data


class Writer(Protocol):
    """Where :func:`send_evenly` writes a session's frames (an ``asyncio.StreamWriter``)."""

    def write(self, data: bytes) -> None: ...


async def send_evenly(
    writers: Sequence[Writer], frames: Sequence[bytes], rate: float, seconds: float
) -> int:
    """Write ``round(rate * seconds)`` frames, round-robin over the sessions, ``rate`` a second.

    Frame ``n`` goes to session ``n % len(writers)`` (``frames[n % len(writers)]``), no sooner
    than ``n / rate`` seconds after the first; a loop that falls behind writes the late frames
    at once and skips none. Returns how many it wrote, one step after the last was due.
    """
    loop = asyncio.get_running_loop()
    step = 1.0 / rate
    total = max(1, round(rate * seconds))
    start = loop.time()
    for n in range(total):
        delay = start + n * step - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        i = n % len(writers)
        writers[i].write(frames[i])
    delay = start + total * step - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    return total


async def measure(
    port: int, pids: dict[str, int], gateway_pid: int | None, args: argparse.Namespace
) -> dict[str, Result]:
    sessions = await open_sessions(port, args.sessions)
    writers = [writer for _, writer in sessions]
    results: dict[str, Result] = {}
    try:
        for kind in KINDS:
            frames = [
                b"\n"
                if kind == "eol"
                else b"SEND\ndestination:/topic/wake.%d\ncontent-length:%d\n\n%s\x00"
                % (i, len(BODY), BODY)
                for i in range(len(writers))
            ]
            await send_evenly(writers, frames, args.rate, args.warmup)
            cpu0 = {label: cpu_seconds(pid) for label, pid in pids.items()}
            sleeps0 = voluntary_switches(gateway_pid) if gateway_pid else 0
            sent = await send_evenly(writers, frames, args.rate, args.duration)
            await asyncio.sleep(0.2)  # the last confirms
            cpu = {
                label: (cpu_seconds(pid) - cpu0[label]) / sent * 1e6 for label, pid in pids.items()
            }
            sleeps = (voluntary_switches(gateway_pid) - sleeps0) / sent if gateway_pid else None
            bad = sum([await refused(reader) for reader, _ in sessions])
            results[kind] = Result(sent, cpu, sleeps, bad)
    finally:
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    return results


def report(name: str, results: dict[str, Result]) -> None:
    for kind, r in results.items():
        split = " + ".join(f"{label} {us:.1f}" for label, us in r.cpu_us.items())
        sleeps = "" if r.sleeps is None else f", gateway slept {r.sleeps:.2f} times per frame"
        if r.refused:
            sleeps += f"; VOID: the server refused {r.refused} sessions"
        print(
            f"[{kind}] {name}: {sum(r.cpu_us.values()):.1f} us per frame ({split})"
            f" over {r.frames:,} frames{sleeps}",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--rate", type=float, default=400.0, help="frames per second, all sessions")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per kind")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each measurement")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if not private_broker.available():
        raise SystemExit("bench-wake needs rabbitmq-server installed (it starts its own node)")
    raise_nofile(args.sessions * 2 + 1024)
    log_dir = Path(tempfile.mkdtemp(prefix="stompgate-wake-"))
    broker = private_broker.PrivateBroker()
    broker.start()
    print(
        f"{args.sessions} STOMP/TCP sessions, {args.rate:,.0f} lone frames/s evenly spaced,"
        f" {args.duration:g} s per kind; {os.cpu_count()} cores shared with this client"
    )
    table: list[tuple[str, str, float, float]] = []
    try:
        for _ in range(args.rounds):
            gateway = start_gateway(broker.amqp_url, log_dir, "wake")
            assert gateway.process is not None
            pid = gateway.process.pid
            try:
                ours = asyncio.run(
                    measure(gateway.stomp_port, {"gateway": pid, "beam.smp": broker.pid}, pid, args)
                )
            finally:
                gateway.stop()
            report("gateway", ours)
            theirs = asyncio.run(measure(broker.stomp_port, {"beam.smp": broker.pid}, None, args))
            report("rabbitmq-stomp", theirs)
            for kind in KINDS:
                a, b = sum(ours[kind].cpu_us.values()), sum(theirs[kind].cpu_us.values())
                table.append((kind, f"{a:.1f} / {b:.1f}", a, b))
    finally:
        broker.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    print("\nframe  CPU us per frame, gateway (+beam) / RabbitMQ STOMP plugin    ratio")
    for kind, text, a, b in table:
        print(f"{kind:<6} {text:<58} {a / b:.2f}")


if __name__ == "__main__":
    main()
