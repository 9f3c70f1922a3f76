"""The gateway against RabbitMQ's Web-STOMP plugin, same clients, same load: ``make bench``.

``python -m benchmarks.bench_gateway [--scenarios idle,rooms100,rooms10,pairs] [--rounds 3]
[--client node|python] [--gateway-arg=ARG ...] ...``

Every run starts a fresh gateway process (``python -m gateway --auth dev``, on free ports,
per-session rate limits and connection caps off, ``--log-level WARNING``, plus every
``--gateway-arg``, e.g. the WebSocket path to serve) or uses Web-STOMP
(``ws://127.0.0.1:<port>/ws``), both on the same vhost of the same RabbitMQ node (the gateway
through its AMQP URL, Web-STOMP through the CONNECT ``host`` header). The clients are
identical: STOMP 1.2 over WebSocket from one load process, ``SUBSCRIBE /topic/room.N`` with
``ack:auto`` and ``SEND /topic/room.N``; ``--client node`` (default) is
``benchmarks/loadgen.cjs`` (the ``ws`` package from ``tests/js/node_modules``), ``--client
python`` its twin ``benchmarks/loadgen_py.py`` (aiohttp's client on uvloop), to tell what
the client contributes to a figure from what the server does.

Scenarios: ``idle`` (``--idle-connections`` sessions that finished CONNECT, heart-beats on:
``--heartbeat`` ms both ways), ``rooms100`` (``--s1``, 100 rooms x 10 subscribers),
``rooms10`` (``--s2``, 10 x 100), ``pairs`` (``--s3``, 200 x 2). Each traffic scenario runs
``--rounds`` times (default 3). In each round it runs first as fast as each server can
(closed loop: each publisher keeps ``--inflight`` batches of ``--receipt-every`` SENDs, 10,
the last with a receipt, unconfirmed; Web-STOMP first), then both at one fixed offered load:
``--moderate`` (a fifth) of Web-STOMP's maximum in that round (``--rate`` fixes it instead).
The detailed table shows the round with the median CPU ratio. The targets table (issue 19)
takes, for each target, the median over the rounds of the ratio of the round's two runs
(this machine drifts by tens of per cent within minutes, so only the two runs of one round
are compared), every round's ratio beside it, and says pass or FAIL:

* RSS per idle WebSocket session (the gateway process) <= 10 KiB;
* CPU per delivered message at full speed <= 0.25 x Web-STOMP's for rooms of 10 or more,
  <= 0.5 x for pairs;
* CPU per delivered message at moderate load <= 0.5 x for rooms of 10 (or more), <= 0.8 x
  for pairs; p99 latency there <= Web-STOMP's;
* the broker's own CPU per delivered message through the gateway beside the total, for
  every room size (the part that does not scale out with more gateway nodes);
* 100,000 idle sessions on one node: ``make bench-sessions`` (benchmarks/bench_sessions.py).

Measured per traffic run, over a window after a warm-up:

* delivered messages/s, counted at the subscribers;
* server CPU per delivered message: utime+stime from ``/proc/<pid>/stat`` of the gateway
  process plus ``beam.smp`` (gateway), of ``beam.smp`` alone (Web-STOMP); for the gateway
  also split into the two processes (us per delivered message and % of a core each); of
  each process the part spent in the kernel (stime: system calls and the loopback TCP work
  done in them) and its sleeps per SEND (voluntary context switches: each is a wake-up);
* per CPU target a *floor*: the ratio the gateway path would reach if the gateway process
  spent nothing in user space (the broker's CPU plus the gateway's kernel time); a floor
  above a target means no user-space change meets it without fewer system calls;
* end-to-end latency p50/p99: the publisher writes ``t=<ms>;`` at the start of the body,
  the subscriber (same process, same clock) subtracts it on receipt;
* the load generator's own CPU, and everything else on the machine ("other"), so a reader
  can judge the noise on a 2-core machine.

The idle scenario reports the RSS delta (``VmRSS``) per connection of the gateway process
(and of ``beam.smp``, which should not move) and of ``beam.smp`` for Web-STOMP.

``--py-spy DIR`` records a py-spy profile of the gateway during each measured window (the
CPU numbers of such a run include py-spy's sampling stalls: profile and measure separately).
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import broker as private_broker
from tests.support.gateway_proc import GatewayProcess
from tests.support.rabbit import (
    PASSWORD,
    RABBIT_WEB_STOMP_PORT,
    USER,
    amqp_url,
    create_vhost,
    delete_vhost,
    mgmt,
)

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = Path(__file__).with_name("loadgen.cjs")
WEB_STOMP_URL = f"ws://127.0.0.1:{RABBIT_WEB_STOMP_PORT}/ws"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GATEWAY_ENV = {
    "STOMPGATE_FRAMES_PER_SECOND": "0",
    "STOMPGATE_BYTES_PER_SECOND": "0",
    "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0",
    "STOMPGATE_MAX_CONNECTIONS_PER_USER": "0",
}
TARGETS = ("gateway", "web-stomp")


# -- /proc ---------------------------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads), in seconds: user space (the
    interpreter, uvloop, the Erlang VM) and the kernel (system calls, TCP on loopback)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    return sum(cpu_split(pid))


def sleeps(pid: int) -> int:
    """Voluntary context switches of all a process's threads: how often it went to sleep
    waiting for something (each one is a wake-up later)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def nofile_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            parts = line.split()
            return f"{parts[3]}/{parts[4]}"
    return "?"


def beam_pid() -> int:
    found = subprocess.run(
        ["pgrep", "-x", "beam.smp"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not found:
        raise SystemExit("beam.smp not running: start RabbitMQ first (make services)")
    return int(found[0])


def busy_cpu_seconds() -> float:
    """CPU time of the whole machine (all cores) spent not idle, in seconds."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rabbit_socket_limit() -> int | None:
    """RabbitMQ's own socket limit (file_handle_cache's obtain limit), or None if unknown."""
    try:
        nodes = mgmt("GET", "/nodes")
    except OSError:
        return None
    total = nodes[0].get("sockets_total") if nodes else None
    return int(total) if isinstance(total, int) else None


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE (soft) to the hard limit; children inherit it. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + 1024)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# -- the load generator ---------------------------------------------------------------------------


CLIENTS = ("node", "python")


def loadgen_command(client: str) -> list[str]:
    """The load generator's command line: ``node`` (loadgen.cjs, the ``ws`` package) or
    ``python`` (loadgen_py.py: aiohttp's client on uvloop); both speak the same protocol."""
    if client == "python":
        return [sys.executable, "-m", "benchmarks.loadgen_py"]
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node not found: install Node 20 (and `make install` for ws)")
    return [node, str(LOADGEN)]


class LoadGen:
    """One load generator process (``--client``), driven line by line."""

    def __init__(self, config: dict[str, Any], log_dir: Path, client: str = "node") -> None:
        self.stderr_path = log_dir / "loadgen.stderr"
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [*loadgen_command(client), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=ROOT,
            )
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, command: str, timeout: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"load generator silent for {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"load generator exited:\n{self.stderr_tail()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == "fatal":
            raise RuntimeError(f"load generator failed: {event.get('error')}")
        return event

    def stderr_tail(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(TimeoutError, RuntimeError, BrokenPipeError):
                self.call("close", timeout=30)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- servers --------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    pids: dict[str, int]  # label -> pid whose CPU counts as server CPU
    gateway: GatewayProcess | None = None

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()


@dataclass
class Broker:
    """Where both servers' RabbitMQ is: the private node or the shared one."""

    kind: str  # "private" | "shared"
    beam: int
    web_stomp_url: str
    amqp_url: str
    vhost: str


def start_gateway(
    amqp_url: str, log_dir: Path, name: str = "bench", extra_args: Sequence[str] = ()
) -> GatewayProcess:
    """A fresh gateway process on free ports, limits off, logging warnings only;
    ``extra_args`` go on its command line (say, which WebSocket path to serve)."""
    gateway = GatewayProcess(
        amqp_url=amqp_url,
        node_id=f"{name}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}",
        extra_args=("--log-level", "WARNING", *extra_args),
        env=GATEWAY_ENV,
    )
    gateway.start(log_dir)
    assert gateway.process is not None
    return gateway


def start_server(
    name: str, broker: Broker, log_dir: Path, gateway_args: Sequence[str] = ()
) -> Server:
    if name == "web-stomp":
        return Server(name, broker.web_stomp_url, {"beam.smp": broker.beam})
    gateway = start_gateway(broker.amqp_url, log_dir, extra_args=gateway_args)
    assert gateway.process is not None
    return Server(
        name,
        gateway.ws_url,
        {"gateway": gateway.process.pid, "beam.smp": broker.beam},
        gateway=gateway,
    )


# -- results --------------------------------------------------------------------------------------


@dataclass
class TrafficResult:
    delivered_per_s: float
    published_per_s: float
    cpu_us_per_msg: float
    cpu_by_proc: dict[str, float]  # label -> % of one core
    cpu_us_by_proc: dict[str, float]  # label -> us of CPU per delivered message
    sys_us_by_proc: dict[str, float]  # label -> of which in the kernel (stime)
    sleeps_per_send: dict[str, float]  # label -> voluntary context switches per SEND
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    loadgen_cpu_pct: float
    other_cpu_pct: float  # everything else on the machine meanwhile (noise)
    errors: int
    last_error: str


@dataclass
class IdleResult:
    opened: int
    failed: int
    rss_per_conn: dict[str, float]  # label -> bytes per connection
    setup_s: float
    idle_cpu_pct: dict[str, float]  # label -> % of a core while the connections sit idle
    first_error: str = ""


@dataclass
class Scenario:
    key: str
    title: str
    rooms: int = 0
    subs: int = 0
    pubs: int = 1
    idle: int = 0
    results: dict[str, Any] = field(default_factory=dict)  # "<target>" / "<target>/max"
    #: every round's results (traffic scenarios run --rounds times, targets alternating)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    #: every round's offered load of the fixed-rate runs, deliveries/s
    rates: list[float] = field(default_factory=list)


def run_traffic(
    server: Server,
    scenario: Scenario,
    args: argparse.Namespace,
    vhost: str,
    log_dir: Path,
    *,
    mode: str,
    rate: float = 0.0,
) -> TrafficResult:
    """One run of ``scenario``: ``mode`` "fixed" (``rate`` deliveries/s in all) or "max"."""
    publishers = scenario.rooms * scenario.pubs
    deliveries_per_publish = scenario.subs
    rate_per_pub = rate / deliveries_per_publish / publishers
    config = {
        "url": server.url,
        "vhost": vhost,
        "login": USER,
        "passcode": PASSWORD,
        "rooms": scenario.rooms,
        "subs": scenario.subs,
        "pubs": scenario.pubs,
        "rate": rate_per_pub,
        "bodySize": args.body_size,
        "mode": mode,
        "inflight": args.inflight,
        "receiptEvery": args.receipt_every,
        "concurrency": args.concurrency,
    }
    gen = LoadGen(config, log_dir, args.client)
    spy: subprocess.Popen[bytes] | None = None
    try:
        ready = gen.call("setup", timeout=300)
        if ready["failed"]:
            raise RuntimeError(
                f"{server.name}: {ready['failed']} connections failed: {ready['firstError']}"
            )
        gen.call("start")
        time.sleep(args.warmup)
        if args.py_spy and server.gateway is not None:
            spy = start_py_spy(server.pids["gateway"], args, scenario, mode)
        before = {label: cpu_seconds(pid) for label, pid in server.pids.items()}
        sys_before = {label: cpu_split(pid)[1] for label, pid in server.pids.items()}
        sleeps_before = {label: sleeps(pid) for label, pid in server.pids.items()}
        gen_before = cpu_seconds(gen.pid)
        all_before = busy_cpu_seconds()
        gen.call("mark")
        time.sleep(args.duration)
        after = {label: cpu_seconds(pid) for label, pid in server.pids.items()}
        sys_after = {label: cpu_split(pid)[1] for label, pid in server.pids.items()}
        sleeps_after = {label: sleeps(pid) for label, pid in server.pids.items()}
        gen_after = cpu_seconds(gen.pid)
        all_after = busy_cpu_seconds()
        report = gen.call("report")
        gen.call("stop")
    finally:
        if spy is not None:
            spy.wait(args.duration + 30)
        gen.close()
    seconds = float(report["seconds"])
    delivered = int(report["delivered"])
    published = int(report["published"])
    server_cpu = sum(after[label] - before[label] for label in server.pids)
    other = (all_after - all_before) - server_cpu - (gen_after - gen_before)
    return TrafficResult(
        delivered_per_s=delivered / seconds,
        published_per_s=published / seconds,
        cpu_us_per_msg=server_cpu / delivered * 1e6 if delivered else float("nan"),
        cpu_by_proc={
            label: (after[label] - before[label]) / seconds * 100 for label in server.pids
        },
        cpu_us_by_proc={
            label: (after[label] - before[label]) / delivered * 1e6 if delivered else float("nan")
            for label in server.pids
        },
        sys_us_by_proc={
            label: (sys_after[label] - sys_before[label]) / delivered * 1e6
            if delivered
            else float("nan")
            for label in server.pids
        },
        sleeps_per_send={
            label: (sleeps_after[label] - sleeps_before[label]) / published
            if published
            else float("nan")
            for label in server.pids
        },
        p50_ms=report["p50"],
        p99_ms=report["p99"],
        p999_ms=report["p999"],
        loadgen_cpu_pct=(gen_after - gen_before) / seconds * 100,
        other_cpu_pct=max(other, 0.0) / seconds * 100,
        errors=int(report["errors"]),
        last_error=str(report["lastError"]),
    )


def start_py_spy(
    pid: int, args: argparse.Namespace, scenario: Scenario, mode: str
) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise SystemExit(f"--py-spy needs py-spy in the venv ({exe}): pip install py-spy")
    out_dir = Path(args.py_spy)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{scenario.key}-{mode}"
    return subprocess.Popen(
        [
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(args.duration)),
            "--rate",
            "200",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            f"{stem}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_idle(
    server: Server, scenario: Scenario, args: argparse.Namespace, vhost: str, log_dir: Path
) -> IdleResult:
    config = {
        "url": server.url,
        "vhost": vhost,
        "login": USER,
        "passcode": PASSWORD,
        "idle": scenario.idle,
        "concurrency": args.concurrency,
        "heartbeat": args.heartbeat,
    }
    time.sleep(args.settle)
    before = {label: rss_bytes(pid) for label, pid in server.pids.items()}
    gen = LoadGen(config, log_dir, args.client)
    try:
        ready = gen.call("setup", timeout=600)
        time.sleep(1.0)
        cpu0 = {label: cpu_seconds(pid) for label, pid in server.pids.items()}
        time.sleep(args.settle)
        cpu1 = {label: cpu_seconds(pid) for label, pid in server.pids.items()}
        after = {label: rss_bytes(pid) for label, pid in server.pids.items()}
    finally:
        gen.close()
    opened = int(ready["opened"])
    return IdleResult(
        opened=opened,
        failed=int(ready["failed"]),
        rss_per_conn={
            label: (after[label] - before[label]) / opened if opened else float("nan")
            for label in server.pids
        },
        setup_s=float(ready["seconds"]),
        idle_cpu_pct={
            label: (cpu1[label] - cpu0[label]) / args.settle * 100 for label in server.pids
        },
        first_error=str(ready["firstError"]),
    )


# -- the table ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def median_round(sc: Scenario) -> dict[str, Any]:
    """The round whose gateway/Web-STOMP CPU ratio is the median (the machine drifts between
    rounds, so a round's two runs are compared with each other, never across rounds)."""
    if len(sc.rounds) == 1:
        return sc.rounds[0]

    def cpu_ratio(results: dict[str, Any]) -> float:
        g, w = results.get("gateway"), results.get("web-stomp")
        if isinstance(g, TrafficResult) and isinstance(w, TrafficResult) and w.cpu_us_per_msg:
            return g.cpu_us_per_msg / w.cpu_us_per_msg
        return float("nan")

    ordered = sorted(sc.rounds, key=cpu_ratio)
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(sc: Scenario, metric: str) -> str:
    """Every round's gateway/Web-STOMP ratio of ``metric`` (a TrafficResult field)."""
    texts = []
    for results in sc.rounds:
        g, w = results.get("gateway"), results.get("web-stomp")
        if isinstance(g, TrafficResult) and isinstance(w, TrafficResult):
            texts.append(ratio(getattr(g, metric), getattr(w, metric)))
    return ", ".join(texts)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}"


def lat(r: TrafficResult | None) -> str:
    if r is None:
        return "-"
    digits = 2 if (r.p99_ms or 0) < 100 else 0
    return f"{fmt(r.p50_ms, digits)} / {fmt(r.p99_ms, digits)}"


def split_us(r: TrafficResult, label: str) -> str:
    """One process's share of the server CPU: us per delivered message (% of a core)."""
    us = r.cpu_us_by_proc.get(label)
    pct = r.cpu_by_proc.get(label)
    return f"{fmt(us, 1)} ({fmt(pct)}%)" if us is not None else "-"


def print_table(scenarios: list[Scenario], targets: Sequence[str]) -> None:
    gw_name, ws_name = "gateway", "web-stomp"
    rows: list[tuple[str, str, str, str, str]] = []
    for sc in scenarios:
        title = sc.title
        if sc.idle:
            g: IdleResult | None = sc.results.get(gw_name)
            w: IdleResult | None = sc.results.get(ws_name)
            g_proc = g.rss_per_conn.get("gateway") if g else None
            g_beam = g.rss_per_conn.get("beam.smp") if g else None
            w_beam = w.rss_per_conn.get("beam.smp") if w else None
            g_total = g_proc + g_beam if g_proc is not None and g_beam is not None else None
            rows.append(
                (title, "RSS bytes/conn (server)", fmt(g_proc), fmt(w_beam), ratio(g_proc, w_beam))
            )
            rows.append(("", "  + beam.smp delta", fmt(g_beam), "", ""))
            rows.append(("", "  = total", fmt(g_total), fmt(w_beam), ratio(g_total, w_beam)))
            g_cpu = sum(g.idle_cpu_pct.values()) if g else None
            w_cpu = sum(w.idle_cpu_pct.values()) if w else None
            rows.append(("", "server CPU % core, idle", fmt(g_cpu, 1), fmt(w_cpu, 1), ""))
            rows.append(
                (
                    "",
                    "connections opened",
                    f"{g.opened} ({g.setup_s:.1f} s)" if g else "-",
                    f"{w.opened} ({w.setup_s:.1f} s)" if w else "-",
                    "",
                )
            )
            continue
        for suffix, label in (("", ""), ("/max", "max: ")):
            gr: TrafficResult | None = sc.results.get(gw_name + suffix)
            wr: TrafficResult | None = sc.results.get(ws_name + suffix)
            if gr is None and wr is None:
                continue
            rows.append(
                (
                    title,
                    f"{label}delivered msg/s",
                    fmt(gr.delivered_per_s if gr else None),
                    fmt(wr.delivered_per_s if wr else None),
                    ratio(gr.delivered_per_s if gr else None, wr.delivered_per_s if wr else None),
                )
            )
            title = ""
            rows.append(
                (
                    "",
                    f"{label}server CPU us/msg",
                    fmt(gr.cpu_us_per_msg if gr else None, 1),
                    fmt(wr.cpu_us_per_msg if wr else None, 1),
                    ratio(gr.cpu_us_per_msg if gr else None, wr.cpu_us_per_msg if wr else None),
                )
            )
            if gr is not None:
                rows.append(
                    ("", f"{label}  of which gateway us/msg", split_us(gr, "gateway"), "", "")
                )
                rows.append(
                    (
                        "",
                        f"{label}  of which beam.smp us/msg",
                        split_us(gr, "beam.smp"),
                        fmt(wr.cpu_us_by_proc.get("beam.smp") if wr else None, 1),
                        "",
                    )
                )
            rows.append(
                (
                    "",
                    f"{label}p50 / p99 latency ms",
                    lat(gr),
                    lat(wr),
                    ratio(gr.p99_ms if gr else None, wr.p99_ms if wr else None) + " (p99)",
                )
            )
            if not label and len(sc.rounds) > 1:
                cpu_rounds = round_ratios(sc, "cpu_us_per_msg")
                p99_rounds = round_ratios(sc, "p99_ms")
                rows.append(("", "  CPU ratio, every round", "", "", cpu_rounds))
                rows.append(("", "  p99 ratio, every round", "", "", p99_rounds))
            rows.append(
                (
                    "",
                    f"{label}loadgen/other CPU %",
                    f"{fmt(gr.loadgen_cpu_pct)} / {fmt(gr.other_cpu_pct)}" if gr else "-",
                    f"{fmt(wr.loadgen_cpu_pct)} / {fmt(wr.other_cpu_pct)}" if wr else "-",
                    "",
                )
            )
            errs = [
                f"{n}: {r.errors} ({r.last_error[:60]!r})"
                for n, r in ((gw_name, gr), (ws_name, wr))
                if r is not None and r.errors
            ]
            if errs:
                rows.append(("", f"{label}client errors", "; ".join(errs), "", ""))
    widths = [31, 33, 24, 22, 14]
    header = ("scenario", "metric", "gateway", "web-stomp", "ratio (gw/ws)")
    print()
    print("".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-" * sum(widths))
    for row in rows:
        print("".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    del targets


# -- the targets (issue 19) ----------------------------------------------------------------------

#: idle WebSocket session, gateway process RSS, bytes
TARGET_RSS = 10 * 1024


def full_speed_limit(subs: int) -> float | None:
    """Gateway (+ broker) CPU per delivered message at full speed, as a fraction of
    Web-STOMP's: rooms of 10 or more 0.25, pairs 0.5; no target for other sizes."""
    return 0.25 if subs >= 10 else 0.5 if subs == 2 else None


def moderate_limit(subs: int) -> float | None:
    """The same at moderate load (a fifth of Web-STOMP's maximum): rooms of 10 (or more)
    0.5, pairs 0.8."""
    return 0.5 if subs >= 10 else 0.8 if subs == 2 else None


def median(values: Sequence[float]) -> float | None:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else None


def per_round(sc: Scenario, key: str, metric: Any) -> list[float]:
    """``metric(result)`` for ``key`` ("gateway", "web-stomp/max", ...) in every round."""
    out = []
    for results in sc.rounds:
        r = results.get(key)
        if isinstance(r, TrafficResult):
            value = metric(r)
            out.append(float("nan") if value is None else float(value))
    return out


def ratios(sc: Scenario, suffix: str, metric: Any) -> list[float]:
    out = []
    for results in sc.rounds:
        g, w = results.get("gateway" + suffix), results.get("web-stomp" + suffix)
        if isinstance(g, TrafficResult) and isinstance(w, TrafficResult):
            a, b = metric(g), metric(w)
            out.append(a / b if a is not None and b else float("nan"))
    return out


def kernel_and_broker_us(r: TrafficResult) -> float:
    """What a message would cost the gateway path if the gateway process spent no time in
    user space at all (no interpreter, no event loop): the broker's CPU and the gateway's
    kernel time (its system calls and the loopback TCP work done in them). For Web-STOMP,
    whose only process is the broker, this is its whole CPU. A ratio above a target here
    means no user-space change meets that target without fewer system calls or broker work."""
    return sum(
        r.cpu_us_by_proc.get(label, 0.0) for label in r.cpu_us_by_proc if label != "gateway"
    ) + r.sys_us_by_proc.get("gateway", 0.0)


def verdict(value: float | None, limit: float | None) -> str:
    if limit is None:
        return "info"
    if value is None:
        return "-"
    return "pass" if value <= limit else "FAIL"


def print_targets(scenarios: list[Scenario]) -> None:
    """Every target of issue 19 with its figure (the median over the rounds; for a ratio,
    the median of the rounds' ratios, each round's two runs compared with each other)."""
    rows: list[tuple[str, ...]] = []
    for sc in scenarios:
        if sc.idle:
            g = sc.results.get("gateway")
            w = sc.results.get("web-stomp")
            per = g.rss_per_conn.get("gateway") if isinstance(g, IdleResult) else None
            theirs = w.rss_per_conn.get("beam.smp") if isinstance(w, IdleResult) else None
            rows.append(
                (
                    "RSS per idle WS session",
                    f"{sc.idle:,} sessions",
                    f"{fmt(per)} B",
                    f"{fmt(theirs)} B",
                    "",
                    "<= 10,240 B",
                    verdict(per, TARGET_RSS),
                )
            )
            continue
        size = f"{sc.rooms}x{sc.subs}"
        for suffix, what, limit in (
            ("/max", "CPU/msg, full speed", full_speed_limit(sc.subs)),
            ("", "CPU/msg, moderate load", moderate_limit(sc.subs)),
        ):
            rs = ratios(sc, suffix, lambda r: r.cpu_us_per_msg)
            if not rs:
                continue
            g_us = median(per_round(sc, "gateway" + suffix, lambda r: r.cpu_us_per_msg))
            w_us = median(per_round(sc, "web-stomp" + suffix, lambda r: r.cpu_us_per_msg))
            m = median(rs)
            load = ""
            if suffix == "/max":
                g_rate = median(per_round(sc, "gateway/max", lambda r: r.delivered_per_s))
                w_rate = median(per_round(sc, "web-stomp/max", lambda r: r.delivered_per_s))
                load = f" ({fmt(g_rate)} vs {fmt(w_rate)} msg/s)"
            elif sc.rates:
                load = f" at {fmt(median(sc.rates))} msg/s"
            rows.append(
                (
                    what + load,
                    size,
                    f"{fmt(g_us, 1)} us",
                    f"{fmt(w_us, 1)} us",
                    f"{fmt(m, 2)} ({', '.join(fmt(x, 2) for x in rs)})",
                    f"<= {limit:.2f}x" if limit is not None else "-",
                    verdict(m, limit),
                )
            )
            floor = ratios(sc, suffix, kernel_and_broker_us)
            if floor:
                mf = median(floor)
                g_floor = median(per_round(sc, "gateway" + suffix, kernel_and_broker_us))
                rows.append(
                    (
                        "  floor: broker + gateway's kernel time",
                        size,
                        f"{fmt(g_floor, 1)} us",
                        "",
                        f"{fmt(mf, 2)} ({', '.join(fmt(x, 2) for x in floor)})",
                        f"<= {limit:.2f}x" if limit is not None else "-",
                        "info" if limit is None or mf is None or mf <= limit else "beyond",
                    )
                )
            if suffix == "":
                p99 = ratios(sc, "", lambda r: r.p99_ms)
                m99 = median(p99)
                g99 = median(per_round(sc, "gateway", lambda r: r.p99_ms))
                w99 = median(per_round(sc, "web-stomp", lambda r: r.p99_ms))
                rows.append(
                    (
                        "p99 latency, moderate load",
                        size,
                        f"{fmt(g99, 2)} ms",
                        f"{fmt(w99, 2)} ms",
                        f"{fmt(m99, 2)} ({', '.join(fmt(x, 2) for x in p99)})",
                        "<= 1.00x",
                        verdict(m99, 1.0),
                    )
                )
        for suffix, what in (("/max", "full speed"), ("", "moderate")):
            beam = median(
                per_round(sc, "gateway" + suffix, lambda r: r.cpu_us_by_proc.get("beam.smp"))
            )
            total = median(per_round(sc, "gateway" + suffix, lambda r: r.cpu_us_per_msg))
            if beam is None or total is None:
                continue
            rows.append(
                (
                    f"broker CPU via gateway, {what}",
                    size,
                    f"{fmt(beam, 1)} of {fmt(total, 1)} us",
                    "",
                    f"{beam / total * 100:.0f} % of total" if total else "-",
                    "-",
                    "info",
                )
            )
    rows.append(
        (
            "100,000 idle sessions, one node",
            "",
            "make bench-sessions",
            "",
            "",
            "<5 % core",
            "see there",
        )
    )
    header = ("target", "room", "gateway", "web-stomp", "ratio: median (rounds)", "limit", "")
    widths = [46, 16, 22, 13, 28, 13, 6]
    print("\nTargets of issue 19 (median of the rounds):")
    print("".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-" * sum(widths))
    for row in rows:
        print("".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# -- main -----------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    try:
        rooms, subs = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"a room size is ROOMSxSUBSCRIBERS, like 100x10: not {text!r}") from None
    if rooms < 1 or subs < 1:
        raise SystemExit(f"rooms and subscribers must be at least 1: {text!r}")
    return rooms, subs


SCENARIOS = ("idle", "rooms100", "rooms10", "pairs")


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    out: list[Scenario] = []
    for key in wanted:
        if key == "rooms100":
            rooms, subs = parse_size(args.s1)
        elif key == "rooms10":
            rooms, subs = parse_size(args.s2)
        elif key == "pairs":
            rooms, subs = parse_size(args.s3)
        elif key == "idle":
            n = args.idle_connections
            out.append(Scenario("idle", f"idle connections ({n})", idle=n))
            continue
        else:
            raise SystemExit(f"unknown scenario {key!r} ({', '.join(SCENARIOS)})")
        title = f"{rooms} rooms x {subs} subs x {args.pubs} pub"
        out.append(Scenario(key, title, rooms=rooms, subs=subs, pubs=args.pubs))
    return out


#: offered load of the fixed-rate runs when neither --rate nor a Web-STOMP maximum is known
FALLBACK_RATE = 4000.0


def moderate_rate(sc: Scenario, args: argparse.Namespace) -> float:
    """The fixed-rate runs' load: ``--rate``, else a ``--moderate`` fraction of this round's
    Web-STOMP maximum (else the last round's, else FALLBACK_RATE)."""
    if args.rate:
        return float(args.rate)
    theirs = sc.results.get("web-stomp/max")
    if isinstance(theirs, TrafficResult) and theirs.delivered_per_s > 0:
        return theirs.delivered_per_s * float(args.moderate)
    return float(sc.rates[-1]) if sc.rates else FALLBACK_RATE


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list")
    p.add_argument("--targets", default="gateway,web-stomp", help="gateway,web-stomp")
    p.add_argument("--s1", default="100x10", help="rooms x subscribers of scenario rooms100")
    p.add_argument("--s2", default="10x100", help="rooms x subscribers of scenario rooms10")
    p.add_argument("--s3", default="200x2", help="rooms x subscribers of scenario pairs")
    p.add_argument("--pubs", type=int, default=1, help="publishers per room")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered deliveries/s per scenario (total) of the fixed-rate runs; default:"
        " --moderate times Web-STOMP's maximum in the same round",
    )
    p.add_argument(
        "--moderate",
        type=float,
        default=0.2,
        help="the moderate load as a fraction of Web-STOMP's maximum (default 0.2: a fifth)",
    )
    p.add_argument(
        "--max",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run closed-loop max throughput (default; --no-max skips it)",
    )
    p.add_argument(
        "--fixed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the fixed-rate (moderate load) runs (default; --no-fixed: full speed only)",
    )
    p.add_argument("--inflight", type=int, default=5, help="--max: receipt batches in flight")
    p.add_argument(
        "--receipt-every",
        type=int,
        default=10,
        help="--max: SENDs per batch, the last with a receipt (1: a receipt on every SEND)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="measured window, seconds")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="traffic scenarios: rounds of gateway then Web-STOMP; the median round is shown",
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--settle", type=float, default=3.0, help="idle: seconds idle before RSS sample")
    p.add_argument("--idle-connections", type=int, default=5000)
    p.add_argument(
        "--heartbeat",
        type=int,
        default=10000,
        help="idle: heart-beat ms both ways in CONNECT (the clients send theirs); 0 = none",
    )
    p.add_argument("--body-size", type=int, default=256, help="SEND body bytes")
    p.add_argument("--concurrency", type=int, default=64, help="connections opened at once")
    p.add_argument(
        "--client",
        choices=CLIENTS,
        default="node",
        help="load generator: node (loadgen.cjs, the ws package) or python (aiohttp, uvloop)",
    )
    p.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed on to `python -m gateway` (repeat; e.g. --gateway-arg=--ws-impl=lean)",
    )
    p.add_argument("--py-spy", metavar="DIR", help="py-spy raw profiles of the gateway here")
    p.add_argument("--keep-logs", action="store_true", help="keep the gateway logs")
    p.add_argument(
        "--broker",
        choices=("private", "shared"),
        default="private",
        help="private: a throw-away RabbitMQ node with a raised open-files limit (default);"
        " shared: the one on 5672/15674 (a vhost of its own)",
    )
    args = p.parse_args(argv)
    if args.rate < 0 or not 0 < args.moderate <= 1:
        raise SystemExit("--rate must be >= 0 and --moderate in (0, 1]")
    if args.rounds < 1 or args.duration <= 0:
        raise SystemExit("--rounds must be at least 1 and --duration above 0")
    if not args.max and not args.fixed:
        raise SystemExit("--no-max and --no-fixed leave nothing to run")

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"unknown target {t!r}")
    # Web-STOMP's maximum sets the moderate load: measure it first in each round
    max_order = sorted(targets, key=lambda t: t != "web-stomp")
    scenarios = build_scenarios(args)
    most = max([s.idle or s.rooms * (s.subs + s.pubs) for s in scenarios] + [0])
    soft, hard = raise_nofile(most + 1024)
    print(f"RLIMIT_NOFILE {soft}/{hard} (soft/hard); largest scenario needs ~{most} sockets")
    if soft < most + 256:
        print(
            f"WARNING: the hard limit on open files ({hard}) is too low for {most} connections;"
            " raise it (ulimit -Hn / limits.conf) or use --idle-connections"
        )
    if args.broker == "private" and not private_broker.available():
        print("rabbitmq-server not installed here: using the shared broker")
        args.broker = "shared"
    log_dir = Path(tempfile.mkdtemp(prefix="stompgate-bench-"))
    private: private_broker.PrivateBroker | None = None
    shared_vhost: str | None = None
    try:
        if args.broker == "private":
            private = private_broker.PrivateBroker()
            private.start()
            broker = Broker("private", private.pid, private.web_stomp_url, private.amqp_url, "/")
            socket_limit: int | None = None
        else:
            shared_vhost = create_vhost("stompgate-bench")
            broker = Broker(
                "shared", beam_pid(), WEB_STOMP_URL, amqp_url(shared_vhost), shared_vhost
            )
            socket_limit = rabbit_socket_limit()
        print(
            f"broker: {broker.kind} RabbitMQ (beam.smp pid {broker.beam}, open files"
            f" {nofile_limit(broker.beam)}), vhost {broker.vhost!r} for both servers"
        )
        if socket_limit is not None and socket_limit < most + 16:
            print(
                f"WARNING: the shared RabbitMQ allows {socket_limit} sockets (started with a low"
                " `ulimit -n`); Web-STOMP runs that need more are skipped. Restart it with a"
                " higher limit, or use --broker private"
            )
        load = (
            f"{args.rate:,.0f} deliveries/s"
            if args.rate
            else f"{args.moderate:g} x Web-STOMP's maximum in the round"
        )
        print(
            f"offered load (fixed-rate runs): {load}, {args.body_size} B bodies; window"
            f" {args.duration:g} s after {args.warmup:g} s warm-up; CPU from /proc at"
            f" {CLK_TCK} Hz; {os.cpu_count()} cores shared with the load generator"
            f" ({args.client}); gateway args: {' '.join(args.gateway_arg) or '(none)'}"
        )
        idle_cpu0, busy0 = cpu_seconds(broker.beam), busy_cpu_seconds()
        time.sleep(2.0)
        print(
            f"before: beam.smp idle CPU {(cpu_seconds(broker.beam) - idle_cpu0) * 50:.1f}% of a"
            f" core, whole machine {(busy_cpu_seconds() - busy0) * 50:.0f}% of a core"
        )
        first = True
        for sc in scenarios:
            needed = sc.idle or sc.rooms * (sc.subs + sc.pubs)
            skip_ws = socket_limit is not None and needed > socket_limit
            if skip_ws:
                print(f"[{sc.key}] web-stomp: skipped ({needed} > {socket_limit} sockets)")
            runnable = [t for t in targets if not (t == "web-stomp" and skip_ws)]
            for _ in range(1 if sc.idle else args.rounds):
                sc.results = {}
                if sc.idle:
                    for target in runnable:
                        run_one(sc, target, broker, args, log_dir, first=first)
                        first = False
                else:
                    if args.max:
                        for target in [t for t in max_order if t in runnable]:
                            run_one(sc, target, broker, args, log_dir, first=first, mode="max")
                            first = False
                    rate = moderate_rate(sc, args)
                    sc.rates.append(rate)
                    for target in runnable if args.fixed else []:
                        run_one(
                            sc, target, broker, args, log_dir, first=first, mode="fixed", rate=rate
                        )
                        first = False
                sc.rounds.append(sc.results)
            sc.results = median_round(sc)
    finally:
        if private is not None:
            private.stop()
        if shared_vhost is not None:
            delete_vhost(shared_vhost)
        if args.keep_logs:
            print(f"logs in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    print_table(scenarios, targets)
    print_targets(scenarios)


def run_one(
    sc: Scenario,
    target: str,
    broker: Broker,
    args: argparse.Namespace,
    log_dir: Path,
    *,
    first: bool,
    mode: str = "fixed",
    rate: float = 0.0,
) -> None:
    """One run on a fresh server: the idle scenario, or one traffic ``mode``."""
    server = start_server(target, broker, log_dir, args.gateway_arg)
    try:
        if server.gateway is not None and first:
            print(f"gateway RLIMIT_NOFILE: {nofile_limit(server.pids['gateway'])}")
        if sc.idle:
            idle = run_idle(server, sc, args, broker.vhost, log_dir)
            sc.results[target] = idle
            per = ", ".join(f"{k} {v:,.0f} B" for k, v in idle.rss_per_conn.items())
            cpu = ", ".join(f"{k} {v:.1f}%" for k, v in idle.idle_cpu_pct.items())
            print(
                f"[{sc.key}] {target}: {idle.opened} open ({idle.failed} failed"
                f"{': ' + idle.first_error if idle.failed else ''}) in"
                f" {idle.setup_s:.1f} s; RSS/conn {per}; idle CPU {cpu}",
                flush=True,
            )
            return
        r = run_traffic(server, sc, args, broker.vhost, log_dir, mode=mode, rate=rate)
        sc.results[target + ("/max" if mode == "max" else "")] = r
        split = ", ".join(
            f"{k} {r.cpu_us_by_proc[k]:.1f} us (kernel {r.sys_us_by_proc[k]:.1f}) = {v:.0f}%,"
            f" {r.sleeps_per_send[k]:.2f} sleeps/SEND"
            for k, v in r.cpu_by_proc.items()
        )
        offered = f" at {rate:,.0f}/s offered" if mode == "fixed" else ""
        print(
            f"[{sc.key}/{mode}] {target}: {r.delivered_per_s:,.0f} msg/s{offered}"
            f" (published {r.published_per_s:,.0f}/s), {r.cpu_us_per_msg:.1f}"
            f" us/msg ({split}), p50 {fmt(r.p50_ms, 2)} p99 {fmt(r.p99_ms, 2)}"
            f" p99.9 {fmt(r.p999_ms, 2)} ms, loadgen {r.loadgen_cpu_pct:.0f}%,"
            f" other {r.other_cpu_pct:.0f}%, errors {r.errors}",
            flush=True,
        )
    finally:
        server.stop()
        time.sleep(1.0)


if __name__ == "__main__":
    main()
