"""The STOMP fuzzer, run for a set time: ``python -m benchmarks.fuzz_stomp --seconds 300``
(``make fuzz``; ``FUZZ_SECONDS`` sets the default).

The invariant (docs: DESIGN.md, "Protocol core"): any byte string either parses into frames
or yields one ERROR; the codec never raises anything else and never hangs. The property tests
in ``tests/stomp/test_fuzz.py`` state it with Hypothesis; this driver runs them as fuzz
targets (Hypothesis' ``fuzz_one_input``: random and mutated buffers decide what the test's
strategies draw, so every input is a valid case of the same test, checked by the same
assertions), plus a raw target that feeds mutated byte strings straight to the parser and a
fresh session, cut into chunks at random places.

Each input runs under a watchdog (``--hang-seconds``): an input still running after it is a
hang. A failing input is run once more to tell a real finding from a slow machine (the
property tests bound each input to a time budget). Findings are written under
``var/fuzz/`` (input bytes and traceback) and printed, and a failing property test's case
goes to Hypothesis' example database (``.hypothesis/``), so ``pytest tests/stomp`` replays
and shrinks it; the exit status is 1 if any reproduced.

With ``--node-share F`` a part F of the time goes to a live gateway node (``python -m
gateway`` on a fresh vhost of the local RabbitMQ): sessions that CONNECT and then send mutated
streams, 16 at a time; what comes back must parse into frames with at most one ERROR, the
last, after which the node closes the socket; a canary session every 2 s must still get
through.

Prints, per target: executions, executions per second, corpus size and findings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gateway.stomp import (
    Frame,
    HeartBeat,
    Limits,
    Parser,
    ProtocolError,
    events,
    serialize,
)
from tests.stomp import test_fuzz

__all__ = ["Finding", "HangError", "Target", "TargetStats", "fuzz", "main", "targets"]

DEFAULT_SECONDS = 300.0
HANG_SECONDS = 10.0
MAX_CORPUS = 2000
MAX_INPUT = 4096
FINDINGS_DIR = Path("var/fuzz")


class HangError(Exception):
    """An input ran longer than the watchdog allows."""


@dataclass
class Finding:
    target: str
    data: bytes
    error: str
    reproduced: bool
    path: Path | None = None


@dataclass
class TargetStats:
    executions: int = 0
    seconds: float = 0.0
    corpus: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Target:
    """``run(data)`` raises on a violated invariant; ``seeds`` start its corpus."""

    name: str
    run: Callable[[bytes], object]
    seeds: list[bytes]


# -- the raw target: bytes straight to the parser and to a fresh session ---------------------

_SMALL = test_fuzz.SMALL


def _sample_stream() -> list[bytes]:
    frames = [
        Frame("CONNECT", (("accept-version", "1.0,1.1,1.2"), ("host", "/")), b""),
        Frame("SEND", (("destination", "/topic/room.a"), ("receipt", "r1")), b'{"text":"hi"}'),
        Frame("SUBSCRIBE", (("destination", "/topic/room.a"), ("id", "s\\1:x")), b""),
        Frame("SEND", (("destination", "/queue/q"), ("content-length", "3")), b"a\x00b"),
        Frame("BEGIN", (("transaction", "t1"),), b""),
        Frame("ACK", (("id", "m-1"), ("transaction", "t1")), b""),
        Frame("DISCONNECT", (("receipt", "bye"),), b""),
    ]
    seeds = [b"".join(serialize(f, version) for f in frames) for version in ("1.0", "1.1", "1.2")]
    seeds += [b"\n\r\n", b"SEND\r\ndestination:/a\r\n\r\nx\x00\n", b""]
    return seeds


def _raw(data: bytes) -> str:
    """The invariant on raw bytes (cut into chunks at places drawn from the input); returns
    what the parser and the session made of them, so the fuzzer can tell new behaviour."""
    rng = random.Random(data[:8])
    cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(6))]
    chunks = test_fuzz.split(data, cuts)
    for version in ("1.0", "1.1", "1.2"):
        test_fuzz.check_parser(chunks, version, _SMALL)
    test_fuzz.check_parser(chunks, "1.2", Limits())
    seen = test_fuzz.check_fresh_session(chunks, _SMALL)
    return " ".join(_describe(event) for event in seen[:32])


def _describe(event: events.Event) -> str:
    if isinstance(event, events.ProtocolViolation):
        return f"violation:{event.error.message}"
    return type(event).__name__


def targets() -> list[Target]:
    """The property tests of ``tests/stomp/test_fuzz.py`` as fuzz targets, and the raw one."""
    found: list[Target] = [Target("raw", _raw, _sample_stream())]
    for name in sorted(vars(test_fuzz)):
        test = getattr(test_fuzz, name)
        hypothesis_api = getattr(test, "hypothesis", None)
        if name.startswith("test_") and hypothesis_api is not None:
            found.append(Target(name, hypothesis_api.fuzz_one_input, [bytes(64)]))
    return found


# -- mutation -----------------------------------------------------------------------------

_TOKENS = [*test_fuzz.DELIMITERS, b"\r\n", b"\\c", b"\\n", b"content-length:", b"9999"]


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        kind = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == 2:
            out[at:at] = rng.choice(_TOKENS)
        elif kind == 3:
            del out[at : at + rng.randrange(1, 16)]
        elif kind == 4:
            out[at:at] = out[max(0, at - rng.randrange(1, 64)) : at]
        elif kind == 5 and corpus:
            other = rng.choice(corpus)
            start = rng.randrange(len(other) + 1)
            out[at:at] = other[start : start + rng.randrange(1, 64)]
        elif kind == 6:
            out[at:at] = rng.randbytes(rng.randrange(1, 32))
        else:
            del out[at:]
    return bytes(out[:MAX_INPUT])


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise `HangError` in the main thread if the block runs longer than ``seconds``."""

    def fire(signum: int, frame: FrameType | None) -> None:
        raise HangError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _execute(target: Target, data: bytes, hang_seconds: float) -> tuple[object, str | None]:
    try:
        with watchdog(hang_seconds):
            return target.run(data), None
    except Exception:
        return None, traceback.format_exc(limit=12)


def _record(target: Target, data: bytes, error: str, reproduced: bool, out: Path) -> Finding:
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = out / f"{target.name}-{digest}.bin"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(f"reproduced: {reproduced}\n\n{error}")
    return Finding(target.name, data, error, reproduced, path)


def fuzz(
    seconds: float,
    *,
    chosen: list[Target] | None = None,
    seed: int | None = None,
    hang_seconds: float = HANG_SECONDS,
    findings_dir: Path = FINDINGS_DIR,
    max_findings: int = 20,
    report: Callable[[str], None] = print,
) -> dict[str, TargetStats]:
    """Fuzz the targets round-robin for ``seconds``; per target stats with its findings."""
    rng = random.Random(seed)
    all_targets = chosen if chosen is not None else targets()
    stats = {t.name: TargetStats() for t in all_targets}
    corpora = {t.name: list(t.seeds) for t in all_targets}
    seen_errors: set[tuple[str, str]] = set()
    deadline = time.monotonic() + seconds
    next_report = time.monotonic() + 60
    signatures: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        # the target that has had the least time so far: each gets an equal share
        target = min(all_targets, key=lambda t: stats[t.name].seconds)
        stat, corpus = stats[target.name], corpora[target.name]
        base = rng.choice(corpus) if corpus and rng.random() < 0.9 else rng.randbytes(256)
        data = mutate(rng, base, corpus)
        started = time.perf_counter()
        result, error = _execute(target, data, hang_seconds)
        stat.seconds += time.perf_counter() - started
        stat.executions += 1
        if error is None:
            _keep(rng, corpus, data, result, target.name, signatures)
        else:
            last_line = error.strip().splitlines()[-1]
            if (target.name, last_line) not in seen_errors:
                seen_errors.add((target.name, last_line))
                _, again = _execute(target, data, hang_seconds)
                finding = _record(target, data, error, again is not None, findings_dir)
                stat.findings.append(finding)
                report(
                    f"FINDING in {target.name} "
                    f"({'reproduced' if again else 'did not reproduce'}): {last_line}\n"
                    f"  input: {finding.path}"
                )
                if sum(len(s.findings) for s in stats.values()) >= max_findings:
                    break
        if time.monotonic() >= next_report:
            next_report += 60
            total = sum(s.executions for s in stats.values())
            report(f"  ... {total:,} executions so far")
    return _done(stats, corpora)


def _keep(
    rng: random.Random,
    corpus: list[bytes],
    data: bytes,
    result: object,
    name: str,
    signatures: set[tuple[str, str]],
) -> None:
    """Grow the corpus: the raw target keeps an input whose behaviour (its events) is new;
    a Hypothesis target keeps the buffer it replays with, sampled at random when full."""
    if isinstance(result, str):
        if (name, result) in signatures or len(signatures) > 100_000:
            return
        signatures.add((name, result))
        kept = data
    elif isinstance(result, bytes):
        kept = result
    else:
        return
    if len(corpus) < MAX_CORPUS:
        corpus.append(kept)
    else:
        corpus[rng.randrange(len(corpus))] = kept


def _done(stats: dict[str, TargetStats], corpora: dict[str, list[bytes]]) -> dict[str, TargetStats]:
    for name, stat in stats.items():
        stat.corpus = len(corpora[name])
    return stats


def summary(stats: dict[str, TargetStats], seconds: float) -> str:
    lines = [f"{'target':<36} {'executions':>11} {'exec/s':>8} {'corpus':>7} findings"]
    for name, s in stats.items():
        rate = s.executions / s.seconds if s.seconds else 0.0
        lines.append(
            f"{name:<36} {s.executions:>11,} {rate:>8,.0f} {s.corpus:>7} {len(s.findings)}"
        )
    total = sum(s.executions for s in stats.values())
    found = [f for s in stats.values() for f in s.findings]
    real = [f for f in found if f.reproduced]
    lines.append(
        f"total: {total:,} executions in {seconds:.0f} s; "
        f"{len(real)} finding(s) reproduced, {len(found) - len(real)} not reproduced"
    )
    return "\n".join(lines)


# -- the live node: the same kind of bytes through a real gateway's TCP listener ----------------

CONNECT_GUEST = b"CONNECT\naccept-version:1.0,1.1,1.2\nlogin:guest\npasscode:guest\n\n\x00"


async def node_case(port: int, data: bytes, idle: float = 0.3, close_wait: float = 10.0) -> str:
    """A session that CONNECTs and then sends ``data``: what comes back must parse into
    frames with at most one ERROR, the last one, after which the node closes the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    parser = Parser(Limits(max_frame_size=1 << 24))
    frames: list[Frame] = []
    eof = False
    try:
        writer.write(CONNECT_GUEST + data)
        while True:
            wait = close_wait if any(f.command == "ERROR" for f in frames) else idle
            try:
                chunk = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                break
            if not chunk:
                eof = True
                break
            parser.feed(chunk)
            while (event := parser.next_event()) is not None:
                if isinstance(event, ProtocolError):
                    raise AssertionError(f"the node sent bytes that do not parse: {event}")
                if not isinstance(event, HeartBeat):
                    frames.append(event)
    except ConnectionResetError:
        eof = True
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    commands = [f.command for f in frames]
    errors = [i for i, c in enumerate(commands) if c == "ERROR"]
    if len(errors) > 1 or (errors and errors[0] != len(commands) - 1):
        raise AssertionError(f"frames after an ERROR: {commands}")
    if errors and not eof:
        raise AssertionError("the node kept the socket open after an ERROR")
    if not commands or commands[0] not in ("CONNECTED", "ERROR"):
        raise AssertionError(f"no CONNECTED (nor ERROR) first: {commands[:3]}")
    message = (frames[errors[0]].header("message") or "") if errors else ""
    return " ".join(commands[:16]) + f" | {message} | eof={eof}"


async def _canary(port: int) -> None:
    """The node still serves a well-behaved session."""
    result = await asyncio.wait_for(node_case(port, b"DISCONNECT\nreceipt:bye\n\n\x00"), 30)
    if not result.startswith("CONNECTED RECEIPT"):
        raise AssertionError(f"the canary session got: {result}")


async def fuzz_node(
    seconds: float,
    port: int,
    *,
    seed: int | None = None,
    concurrency: int = 16,
    findings_dir: Path = FINDINGS_DIR,
    report: Callable[[str], None] = print,
    alive: Callable[[], bool] = lambda: True,
) -> TargetStats:
    """Mutated streams through a live node, ``concurrency`` sessions at a time; a canary
    session every 2 s must still get through."""
    rng = random.Random(seed)
    stat = TargetStats()
    corpus = [s[len(b"CONNECT") :] for s in _sample_stream()]  # after our own CONNECT
    signatures: set[tuple[str, str]] = set()
    seen_errors: set[str] = set()
    target = Target("node", lambda data: None, [])
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    def finding(data: bytes, error: str) -> None:
        last_line = error.strip().splitlines()[-1]
        if last_line in seen_errors:
            return
        seen_errors.add(last_line)
        found = _record(target, data, error, True, findings_dir)
        stat.findings.append(found)
        report(f"FINDING in node: {last_line}\n  input: {found.path}")

    async def one_worker() -> None:
        while time.monotonic() < deadline and len(stat.findings) < 20:
            data = mutate(rng, rng.choice(corpus), corpus)
            try:
                result = await asyncio.wait_for(node_case(port, data), 60)
            except (AssertionError, TimeoutError) as exc:
                finding(data, f"{type(exc).__name__}: {exc}")
                continue
            except OSError as exc:
                finding(data, f"the node refused a connection: {exc}")
                continue
            finally:
                stat.executions += 1
            _keep(rng, corpus, data, result, "node", signatures)

    async def canary() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            try:
                if not alive():
                    raise AssertionError("the gateway process is gone")
                await _canary(port)
            except (AssertionError, OSError, TimeoutError) as exc:
                finding(b"", f"canary: {type(exc).__name__}: {exc}")
                return

    await asyncio.gather(canary(), *(one_worker() for _ in range(concurrency)))
    stat.seconds = time.monotonic() - started
    stat.corpus = len(corpus)
    return stat


def _run_node(seconds: float, seed: int, findings_dir: Path) -> TargetStats:
    """Start a gateway on a fresh vhost and a private Redis prefix, fuzz it, stop it."""
    import redis

    from tests.support.gateway_proc import GatewayProcess
    from tests.support.rabbit import amqp_url, create_vhost, delete_vhost

    vhost = create_vhost("stompgate-fuzz")
    prefix = f"stompgate-fuzz:{random.randrange(2**32):08x}:"
    log_dir = Path(tempfile.mkdtemp(prefix="stompgate-fuzz-"))
    node = GatewayProcess(
        amqp_url=amqp_url(vhost),
        node_id="fuzz",
        env={"STOMPGATE_REDIS_PREFIX": prefix, "STOMPGATE_LOG_LEVEL": "ERROR"},
    )
    try:
        node.start(log_dir)
        print(f"fuzzing a live node (logs in {log_dir}) for {seconds:.0f} s", flush=True)
        return asyncio.run(
            fuzz_node(
                seconds,
                node.stomp_port,
                seed=seed,
                findings_dir=findings_dir,
                report=lambda line: print(line, flush=True),
                alive=lambda: node.process is not None and node.process.poll() is None,
            )
        )
    finally:
        node.stop()
        delete_vhost(vhost)
        client = redis.Redis.from_url(
            os.environ.get("STOMPGATE_REDIS_URL", "redis://127.0.0.1:6379/0")
        )
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_stomp", description=__doc__)
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("FUZZ_SECONDS", DEFAULT_SECONDS)),
        help="how long to fuzz (default: $FUZZ_SECONDS or %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--hang-seconds", type=float, default=HANG_SECONDS)
    parser.add_argument("--findings", type=Path, default=FINDINGS_DIR)
    parser.add_argument(
        "--node-share",
        type=float,
        default=0.0,
        help="part of the time (0..1) spent on a live gateway node (default: none)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.hang_seconds <= 0:
        parser.error("--seconds and --hang-seconds must be positive")
    if not 0 <= args.node_share <= 1:
        parser.error("--node-share must be between 0 and 1")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    chosen = targets()
    print(
        f"fuzzing the STOMP codec for {args.seconds:.0f} s, seed {seed}, "
        f"targets: {', '.join(t.name for t in chosen)}",
        flush=True,
    )
    started = time.monotonic()
    codec_seconds = args.seconds * (1 - args.node_share)
    stats = fuzz(
        codec_seconds,
        chosen=chosen,
        seed=seed,
        hang_seconds=args.hang_seconds,
        findings_dir=args.findings,
        report=lambda line: print(line, flush=True),
    )
    if args.node_share > 0:
        stats["node"] = _run_node(args.seconds * args.node_share, seed, args.findings)
    print(summary(stats, time.monotonic() - started))
    return 1 if any(f.reproduced for s in stats.values() for f in s.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
