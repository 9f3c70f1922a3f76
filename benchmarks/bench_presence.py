"""What presence costs: ``make bench-presence``.

``python -m benchmarks.bench_presence [--users 10000] [--idle 60] [--grace 10] [--modes on,off]``

Two gateway processes (``python -m gateway --auth dev``, the per-IP and per-user connection
limits and the rate limits off) share a private Redis server (``redis-server`` on a free port,
no persistence: its ``INFO commandstats`` count the gateways' commands alone) and a fresh
RabbitMQ vhost. Two load processes (this module with ``--client``) each open half of the
users' sessions to one of the gateways: raw STOMP 1.2 over TCP, one session per user
(``u00000`` ...), ``heart-beat:<ms>,<ms>``, each sending its heart-beat EOL on time. Every user
is a member of one room of ``--room-size`` members (made in the gateways' SQLite store as the
rooms API makes them, their Redis caches built beforehand), so every presence change is
published to a room (through RabbitMQ; nobody subscribes).

Each mode (``on``: presence as configured by ``STOMPGATE_PRESENCE_*``, with ``--grace``;
``off``: ``STOMPGATE_PRESENCE=false``) runs the same phases on fresh processes:

1. *connect*: every session CONNECTs (``--connect-rate`` a second);
2. *idle*: after the connections have settled (presence steady), ``--idle`` seconds of heart-beats;
3. *leave*: every session DISCONNECTs; the window lasts the grace plus 5 s, so the offline
   events fall in it.

Printed per mode and phase: the gateways' CPU (utime+stime from ``/proc``, both processes),
Redis commands per second (all of them, and the EVALSHA calls among them) and, for the idle
phase, CPU per session-minute. The presence line is ``on`` minus ``off``: what presence
costs, as % of one core per 10,000 idle sessions (the target is below 1 %). A 2-core machine
shared with other work is noisy: the idle difference is small next to the heart-beats' own
cost, so run it on a quiet machine and read the Redis figures (exact) next to it.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio as aioredis

from benchmarks.bench_gateway import GATEWAY_ENV, cpu_seconds, raise_nofile
from chatstate.keys import ChatKeys
from gateway.chat.membership import Membership
from gateway.presence.settings import PresenceSettings
from store import Member, Room, open_room_store
from tests.support.gateway_proc import GatewayProcess
from tests.support.private_redis import PrivateRedis
from tests.support.rabbit import amqp_url, create_vhost, delete_vhost

PREFIX = "bench:"
ROOT = Path(__file__).resolve().parents[1]


# -- the load processes ---------------------------------------------------------------------


def user_name(n: int) -> str:
    return f"u{n:05d}"


def connect_frame(user: str, heartbeat_ms: int) -> bytes:
    return (
        f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{user}\npasscode:x\n"
        f"heart-beat:{heartbeat_ms},{heartbeat_ms}\n\n\x00"
    ).encode()


async def client_main(port: int, first: int, count: int, heartbeat_ms: int, rate: int) -> None:
    """One load process: ``count`` sessions from user ``first`` on, each beating from its
    CONNECTED on; says ``connected``, then, at a ``close`` line on stdin, DISCONNECTs everyone
    and says ``closed <n>``: how many sessions the server had closed before (0, or the figures
    are void)."""
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []  # kept open; the server's EOLs stay buffered

    async def open_one(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(connect_frame(user_name(n), heartbeat_ms))
        reply = await asyncio.wait_for(reader.readuntil(b"\x00"), 60)
        if not reply.startswith(b"CONNECTED"):
            raise SystemExit(f"CONNECT of {user_name(n)} refused: {reply[:200]!r}")
        writers.append(writer)
        readers.append(reader)

    async def beat() -> None:
        slices = 20  # each session's EOL goes out once per interval, spread over it
        while True:
            for part in range(slices):
                began = time.monotonic()
                for writer in writers[part::slices]:
                    if not writer.is_closing():
                        writer.write(b"\n")
                spent = time.monotonic() - began
                await asyncio.sleep(max(0.0, heartbeat_ms / 1000 / slices - spent))

    beating = asyncio.create_task(beat())  # from the first session on
    batch = max(1, rate // 10)  # ten batches a second
    for start in range(first, first + count, batch):
        began = time.monotonic()
        await asyncio.gather(
            *(open_one(n) for n in range(start, min(start + batch, first + count)))
        )
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
    print("connected", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "close":
        pass
    beating.cancel()
    lost = sum(1 for writer in writers if writer.is_closing())
    for writer in writers:
        if not writer.is_closing():
            writer.write(b"DISCONNECT\n\n\x00")
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    print(f"closed {lost}", flush=True)


class LoadProcess:
    def __init__(self, port: int, first: int, count: int, args: argparse.Namespace) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_presence",
                "--client",
                f"{port},{first},{count},{args.heartbeat_ms},{args.connect_rate // 2}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )

    def expect(self, word: str) -> str:
        """The rest of the next line, which must start with ``word``."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line.split(" ")[0] != word:
            raise SystemExit(f"load process said {line!r}, expected {word!r}")
        return line[len(word) :].strip()

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# -- Redis -----------------------------------------------------------------------------------


def command_calls(stats: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    """(calls of every command, EVALSHA + EVAL calls) from ``INFO commandstats``."""
    total = sum(int(entry["calls"]) for entry in stats.values())
    scripts = sum(
        int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval")
    )
    return total, scripts


def info_calls(client: redis.Redis) -> tuple[int, int]:
    return command_calls(client.info("commandstats"))


# -- one mode --------------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float
    cpu: float  # gateway CPU seconds (both processes)
    calls: int  # Redis commands
    scripts: int  # of which EVALSHA/EVAL

    @property
    def cpu_pct(self) -> float:
        return 100 * self.cpu / self.seconds

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def scripts_per_s(self) -> float:
        return self.scripts / self.seconds


@dataclass
class Run:
    mode: str
    users: int
    phases: dict[str, Phase] = field(default_factory=dict)
    lost: int = 0  # sessions the server closed before the end: the figures are void

    def cpu_per_session_minute_us(self) -> float:
        idle = self.phases["idle"]
        return idle.cpu / (self.users * idle.seconds / 60) * 1e6


class Meter:
    def __init__(self, pids: Sequence[int], client: redis.Redis) -> None:
        self.pids = pids
        self.client = client
        self._start = self._read()

    def _read(self) -> tuple[float, float, int, int]:
        calls, scripts = info_calls(self.client)
        return time.monotonic(), sum(cpu_seconds(p) for p in self.pids), calls, scripts

    def phase(self) -> Phase:
        now = self._read()
        start, self._start = self._start, now
        return Phase(now[0] - start[0], now[1] - start[1], now[2] - start[2], now[3] - start[3])


def settle(client: redis.Redis, users: int, presence: bool, timeout: float = 120.0) -> None:
    """Until both nodes have recorded every user and nothing is due (presence on), else 3 s."""
    if not presence:
        time.sleep(3)
        return
    keys = ChatKeys(PREFIX)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = client.zrange(keys.presence_nodes(), 0, -1)
        nodes = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
        recorded = sum(int(client.scard(keys.presence_node(n))) for n in nodes)
        if recorded >= users and client.zcard(keys.presence_due()) == 0:
            time.sleep(2)  # the announcements of the last step
            return
        time.sleep(0.2)
    raise SystemExit("presence did not settle: are both gateways up?")


def add_rooms(store: PrivateRedis, users: int, room_size: int) -> str:
    """Every user in one room of ``room_size`` members, made in a SQLite store and cached in
    Redis as the gateways would cache them; the store's URL."""
    url = f"sqlite:///{store.dir / 'chat.sqlite3'}"  # an absolute path: sqlite:////tmp/...
    asyncio.run(_make_rooms(url, store.url, users, room_size))
    return url


async def _make_rooms(url: str, redis_url: str, users: int, room_size: int) -> None:
    rooms = open_room_store(url)
    await rooms.open()
    client = aioredis.Redis.from_url(redis_url)
    try:
        membership = Membership(client, ChatKeys(PREFIX), rooms, roster_prefix=PREFIX)
        for first in range(0, users, room_size):
            room = f"r{first // room_size}"
            members = [user_name(n) for n in range(first, min(users, first + room_size))]
            await rooms.create_room(
                Room(id=room, kind="group", name=room, lang="", owner=members[0], created_at=0),
                [Member(room, user, "member", 0) for user in members],
            )
            await membership.members(room)
        for n in range(users):
            await membership.rooms_of(user_name(n))
    finally:
        await client.aclose()
        await rooms.close()


@contextlib.contextmanager
def gateways(
    vhost: str,
    store: PrivateRedis,
    store_url: str,
    args: argparse.Namespace,
    presence: bool,
    log_dir: Path,
) -> Iterator[list[GatewayProcess]]:
    users = ",".join(f"{user_name(n)}:x" for n in range(args.users))
    env = {
        **GATEWAY_ENV,
        "STOMPGATE_REDIS_URL": store.url,
        "STOMPGATE_REDIS_PREFIX": PREFIX,
        "STOMPGATE_MEMBERSHIP_PREFIX": PREFIX,
        "STOMPGATE_STORE": store_url,
        "STOMPGATE_PRESENCE": "true" if presence else "false",
        "STOMPGATE_PRESENCE_GRACE": str(args.grace),
    }
    started: list[GatewayProcess] = []
    try:
        for name in ("a", "b"):
            node = GatewayProcess(
                amqp_url=amqp_url(vhost),
                node_id=f"presence-bench-{name}",
                extra_args=(
                    "--log-level",
                    "WARNING",
                    "--dev-users",
                    users,
                    "--heartbeat-send-ms",
                    str(args.heartbeat_ms),
                    "--heartbeat-receive-ms",
                    str(args.heartbeat_ms),
                ),
                env=env,
            )
            node.start(log_dir, timeout=60)
            started.append(node)
        yield started
    finally:
        for node in started:
            node.stop()


def run_mode(mode: str, args: argparse.Namespace, log_dir: Path) -> Run:
    presence = mode == "on"
    store = PrivateRedis()
    vhost = create_vhost()
    result = Run(mode, args.users)
    loads: list[LoadProcess] = []
    try:
        store_url = add_rooms(store, args.users, args.room_size)
        with gateways(vhost, store, store_url, args, presence, log_dir) as nodes:
            pids = [n.process.pid for n in nodes if n.process is not None]
            half = args.users // 2
            meter = Meter(pids, store.client)
            loads = [
                LoadProcess(nodes[0].stomp_port, 0, half, args),
                LoadProcess(nodes[1].stomp_port, half, args.users - half, args),
            ]
            for load in loads:
                load.expect("connected")
            settle(store.client, args.users, presence)
            result.phases["connect"] = meter.phase()
            time.sleep(args.idle)
            result.phases["idle"] = meter.phase()
            for load in loads:
                load.tell("close")
            for load in loads:
                result.lost += int(load.expect("closed"))
            time.sleep(args.grace + 5)
            result.phases["leave"] = meter.phase()
    finally:
        for load in loads:
            load.stop()
        delete_vhost(vhost)
        store.close()
    return result


# -- report ----------------------------------------------------------------------------------


def presence_cost_pct(on: Run, off: Run, per_sessions: int = 10_000) -> float:
    """Presence's CPU in the idle phase (on minus off), % of one core per ``per_sessions``."""
    extra = on.phases["idle"].cpu / on.phases["idle"].seconds
    extra -= off.phases["idle"].cpu / off.phases["idle"].seconds
    return 100 * extra * per_sessions / on.users


def report(runs: Sequence[Run]) -> str:
    lines = [
        f"{'mode':<5} {'phase':<8} {'seconds':>8} {'gw CPU %':>9} {'Redis cmd/s':>12} "
        f"{'EVALSHA/s':>10} {'CPU us/session-min':>19}"
    ]
    for run in runs:
        if run.lost:
            lines.append(f"{run.mode}: {run.lost} sessions were closed by the server: void")
        for name, phase in run.phases.items():
            per_min = f"{run.cpu_per_session_minute_us():.1f}" if name == "idle" else ""
            lines.append(
                f"{run.mode:<5} {name:<8} {phase.seconds:>8.1f} {phase.cpu_pct:>9.2f} "
                f"{phase.calls_per_s:>12.1f} {phase.scripts_per_s:>10.1f} {per_min:>19}"
            )
    by_mode = {run.mode: run for run in runs}
    if "on" in by_mode and "off" in by_mode:
        on, off = by_mode["on"], by_mode["off"]
        pct = presence_cost_pct(on, off)
        extra_calls = on.phases["idle"].calls_per_s - off.phases["idle"].calls_per_s
        lines += [
            "",
            f"presence, idle: {pct:+.2f} % of one core per 10,000 sessions "
            f"(target < 1 %: {'met' if pct < 1 else 'NOT met'}), "
            f"{extra_calls:+.1f} Redis commands/s",
        ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000, help="sessions, one per user")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured")
    parser.add_argument("--grace", type=float, default=10.0, help="STOMPGATE_PRESENCE_GRACE")
    parser.add_argument("--heartbeat-ms", type=int, default=10_000, help="both directions")
    parser.add_argument("--connect-rate", type=int, default=1000, help="CONNECTs a second")
    parser.add_argument("--room-size", type=int, default=10, help="members per room")
    parser.add_argument("--modes", default="on,off", help="on, off or both (on,off)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # a load process
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        port, first, count, heartbeat_ms, rate = (int(x) for x in args.client.split(","))
        asyncio.run(client_main(port, first, count, heartbeat_ms, rate))
        return 0
    try:
        PresenceSettings(grace=args.grace)
    except ValueError as exc:
        raise SystemExit(f"--grace: {exc}") from None
    if len(",".join(f"{user_name(n)}:x" for n in range(args.users))) >= 131072:
        raise SystemExit("--users: at most about 14,000 (the dev users list is one argument)")
    raise_nofile(args.users + 1024)
    log_dir = Path(tempfile.mkdtemp(prefix="stompgate-bench-presence-"))
    runs = []
    for mode in args.modes.split(","):
        print(f"running presence {mode}: {args.users} sessions ...", flush=True)
        runs.append(run_mode(mode, args, log_dir))
    print(report(runs))
    print(f"gateway logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
