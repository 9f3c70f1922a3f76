"""The Python twin of ``benchmarks/loadgen.cjs``: ``make bench``'s ``--client python``.

Same configuration (``argv[1]``, JSON), same commands on stdin and replies on stdout, same
frames, same latency histogram; the WebSocket side is aiohttp's client (``ws_connect``, no
permessage-deflate) on uvloop, one process. It exists to tell apart what the client and what
the server contribute to a figure: run one scenario with both clients against both servers
(docs/performance.md). Not part of ``make test``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
from typing import Any

import aiohttp
import uvloop

BUCKETS_PER_E = 200  # ~0.5 % wide buckets, as loadgen.cjs
TICK = 0.002


def now_ms() -> float:
    return time.perf_counter() * 1000


class Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * (BUCKETS_PER_E * 25)
        self.count = 0

    def record(self, latency_ms: float) -> None:
        us = latency_ms * 1000
        b = 0 if us <= 1 else int(math.log(us) * BUCKETS_PER_E)
        self.buckets[min(b, len(self.buckets) - 1)] += 1
        self.count += 1

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        want = math.ceil(self.count * p)
        seen = 0
        for b, n in enumerate(self.buckets):
            seen += n
            if seen >= want:
                return math.exp((b + 0.5) / BUCKETS_PER_E) / 1000
        return None


class Run:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.hist = Histogram()
        self.delivered = 0
        self.published = 0
        self.errors = 0
        self.last_error = ""
        self.mark = now_ms()
        self.closing = False
        self.clients: list[Client] = []
        self.publishers: list[Client] = []
        self.pad = "x" * max(int(cfg.get("bodySize") or 256), 32)
        self.session: aiohttp.ClientSession | None = None
        self.ticker: asyncio.Task[None] | None = None

    def send_frame(self, room: int, receipt: str | None) -> str:
        size = int(self.cfg.get("bodySize") or 256)
        body = f"t={now_ms():.3f};"
        body += self.pad[: max(0, size - len(body))]
        return (
            f"SEND\ndestination:/topic/room.{room}\ncontent-type:text/plain\n"
            f"content-length:{len(body)}\n"
            + (f"receipt:{receipt}\n" if receipt else "")
            + f"\n{body}\x00"
        )


class Client:
    def __init__(self, run: Run, kind: str, room: int) -> None:
        self.run = run
        self.kind = kind
        self.room = room
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sent = 0
        self.outstanding = 0
        self.receipt_seq = 0
        self.phase = random.random()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        run = self.run
        assert run.session is not None
        cfg = run.cfg
        self.ws = await run.session.ws_connect(
            cfg["url"], protocols=("v12.stomp",), compress=0, autoping=True, max_msg_size=0
        )
        hb = int(cfg.get("heartbeat") or 0)
        await self.ws.send_str(
            f"CONNECT\naccept-version:1.2\nhost:{cfg['vhost']}\nlogin:{cfg['login']}\n"
            f"passcode:{cfg['passcode']}\nheart-beat:{hb},{hb}\n\n\x00"
        )
        self.reader = asyncio.get_running_loop().create_task(self.read())
        await asyncio.wait_for(asyncio.shield(self.ready), 30)

    async def read(self) -> None:
        ws = self.ws
        assert ws is not None
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = msg.data.encode()
            elif msg.type is aiohttp.WSMsgType.BINARY:
                data = msg.data
            else:
                break
            self.on_data(data)
        run = self.run
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during setup: {ws.close_code}"))
        elif not run.closing:
            run.errors += 1
            if not run.last_error.startswith("ERROR"):
                run.last_error = f"closed by server: {ws.close_code}"

    def on_data(self, data: bytes) -> None:
        start, size = 0, len(data)
        while start < size:
            while start < size and data[start] in (10, 13):
                start += 1
            if start >= size:
                break
            end = data.find(b"\x00", start)
            if end < 0:
                end = size
            self.on_frame(data, start, end)
            start = end + 1

    def on_frame(self, data: bytes, start: int, end: int) -> None:
        run = self.run
        if data[start] == 77:  # MESSAGE
            now = now_ms()
            sep = data.find(b"\n\n", start, end)
            if sep < 0:
                return
            b = sep + 2
            if data[b : b + 2] == b"t=":
                semi = data.find(b";", b, end)
                run.delivered += 1
                run.hist.record(now - float(data[b + 2 : semi]))
            return
        nl = data.find(b"\n", start, end)
        command = data[start : end if nl < 0 else nl]
        if command == b"CONNECTED":
            if self.kind == "sub":
                assert self.ws is not None
                asyncio.get_running_loop().create_task(
                    self.ws.send_str(
                        f"SUBSCRIBE\nid:0\ndestination:/topic/room.{self.room}\nack:auto\n"
                        "receipt:sub\n\n\x00"
                    )
                )
            elif not self.ready.done():
                self.ready.set_result(None)
        elif command == b"RECEIPT":
            if b"receipt-id:sub" in data[start:end]:
                if not self.ready.done():
                    self.ready.set_result(None)
            else:
                self.outstanding -= 1
        elif command == b"ERROR":
            run.errors += 1
            run.last_error = data[start : min(end, start + 300)].decode(errors="replace")
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(run.last_error))


async def open_all(run: Run, specs: list[tuple[str, int]]) -> tuple[int, str]:
    todo = iter(specs)
    failed = 0
    first_error = ""

    async def worker() -> None:
        nonlocal failed, first_error
        for kind, room in todo:
            client = Client(run, kind, room)
            try:
                await client.open()
            except (OSError, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                failed += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            run.clients.append(client)
            if kind == "pub":
                run.publishers.append(client)

    await asyncio.gather(*(worker() for _ in range(int(run.cfg.get("concurrency") or 100))))
    return failed, first_error


async def tick_fixed(run: Run) -> None:
    rate = float(run.cfg["rate"])
    start = time.perf_counter()
    while True:
        await asyncio.sleep(TICK)
        elapsed = time.perf_counter() - start
        for p in run.publishers:
            due = math.floor(elapsed * rate + p.phase)
            assert p.ws is not None
            while p.sent < due:
                await p.ws.send_str(run.send_frame(p.room, None))
                p.sent += 1
                run.published += 1


async def tick_max(run: Run) -> None:
    window = int(run.cfg.get("inflight") or 5)
    every = max(1, int(run.cfg.get("receiptEvery") or 10))
    while True:
        await asyncio.sleep(TICK)
        for p in run.publishers:
            ws = p.ws
            assert ws is not None
            while p.outstanding < window:
                for i in range(1, every + 1):
                    receipt = None
                    if i == every:
                        p.receipt_seq += 1
                        receipt = f"r{p.receipt_seq}"
                    await ws.send_str(run.send_frame(p.room, receipt))
                    run.published += 1
                p.outstanding += 1


def out(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def handle(run: Run, cmd: str) -> bool:
    cfg = run.cfg
    if cmd == "setup":
        started = now_ms()
        # no cap on connections (aiohttp's default of 100 would hold the 101st socket back)
        run.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        if cfg.get("idle"):
            specs = [("idle", 0)] * int(cfg["idle"])
            pub_specs: list[tuple[str, int]] = []
        else:
            rooms, subs, pubs = int(cfg["rooms"]), int(cfg["subs"]), int(cfg["pubs"])
            specs = [("sub", r) for _ in range(subs) for r in range(rooms)]
            pub_specs = [("pub", r) for _ in range(pubs) for r in range(rooms)]
        failed_a, error_a = await open_all(run, specs)
        failed_b, error_b = await open_all(run, pub_specs)
        out(
            {
                "event": "ready",
                "opened": len(run.clients),
                "failed": failed_a + failed_b,
                "firstError": error_a or error_b,
                "seconds": (now_ms() - started) / 1000,
            }
        )
    elif cmd == "start":
        loop = asyncio.get_running_loop()
        run.ticker = loop.create_task(tick_max(run) if cfg["mode"] == "max" else tick_fixed(run))
        out({"event": "started"})
    elif cmd == "mark":
        run.hist = Histogram()
        run.delivered = run.published = 0
        run.mark = now_ms()
        out({"event": "marked"})
    elif cmd == "report":
        out(
            {
                "event": "report",
                "seconds": (now_ms() - run.mark) / 1000,
                "delivered": run.delivered,
                "published": run.published,
                "errors": run.errors,
                "lastError": run.last_error,
                "p50": run.hist.percentile(0.5),
                "p90": run.hist.percentile(0.9),
                "p99": run.hist.percentile(0.99),
                "p999": run.hist.percentile(0.999),
                "max": run.hist.percentile(1.0),
            }
        )
    elif cmd == "stop":
        if run.ticker is not None:
            run.ticker.cancel()
            run.ticker = None
        out({"event": "stopped"})
    elif cmd == "close":
        run.closing = True
        if run.ticker is not None:
            run.ticker.cancel()
        if run.session is not None:
            await asyncio.wait_for(run.session.close(), 30)  # its connector drops every socket
        out({"event": "closed"})
        return False
    return True


async def main() -> None:
    run = Run(json.loads(sys.argv[1]))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode()
        if not line:
            break
        cmd = line.strip()
        if not cmd:
            continue
        try:
            if not await handle(run, cmd):
                break
        except Exception as exc:  # reported to the driver, which stops
            out({"event": "fatal", "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    uvloop.run(main())
