"""``make bench-sessions``'s load client: its frames are what a WebSocket server reads, and its
sessions upgrade, CONNECT with heart-beats and stay up on a real gateway while it beats; a
burst of SENDs ends at its RECEIPT; the benchmark itself, with small numbers, measures each
WebSocket path it is given (idle sessions after a warm-up, and SENDs).

Nothing here depends on the machine's speed: the waits are bounded by generous deadlines that
only stop a hang, and the one interval asserted (sessions kept past two heart-beat graces)
holds however slow the machine is as long as the client beats (it does so from a timer on
its own loop). Every socket is closed by the test, also when an assertion fails.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from benchmarks.bench_sessions import IdleSession, Stats, open_all, send_all, ws_frame
from tests.support.gateway_proc import GatewayProcess


@pytest.mark.parametrize("size", [0, 1, 125, 126, 300, 65535])
def test_a_client_frame_is_one_masked_text_message(size: int) -> None:
    payload = bytes(65 + i % 26 for i in range(size))
    reader = FrameProtocol(client=False, extensions=[])  # a server reads client frames
    reader.receive_bytes(ws_frame(payload))
    frames = list(reader.received_frames())
    assert len(frames) == 1
    assert frames[0].opcode is Opcode.TEXT
    assert frames[0].frame_finished
    assert frames[0].message_finished
    assert frames[0].payload == payload.decode()


def test_sessions_connect_and_are_kept_while_they_beat(gateway: GatewayProcess) -> None:
    # The gateway expects a beat every max(1 s floor, 500 ms) = 1 s, with a grace of 2 (2 s
    # of silence ends a session); it sends its own every 1 s. Without the client's beats
    # every session would be gone by the end of the wait below.
    cfg = {
        "host": "127.0.0.1",
        "port": gateway.http_port,
        "path": "/ws",
        "vhost": "/",
        "source": "127.0.1.1",
        "count": 4,
        "heartbeat": 500,
        "concurrency": 2,
        "timeout": 30.0,
    }

    async def run() -> tuple[Stats, int]:
        stats = Stats()
        sessions: list[IdleSession] = []
        beater = await open_all(cfg, stats, sessions)
        try:
            assert stats.opened == 4, stats.first_error
            deadline = time.monotonic() + 30  # bounds a hang only
            while stats.received < 4 * 3 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # the server's heart-beats, about 3 s of them
            await asyncio.sleep(3.0)  # past a grace of silence (2 s): still beating, kept
            lost = stats.lost  # before our own aborts below count too
        finally:
            beater.cancel()
            for session in sessions:
                session.abort()
            await asyncio.sleep(0)
        return stats, lost

    stats, lost = asyncio.run(run())
    assert stats.failed == 0
    assert stats.received >= 12
    assert stats.sent >= 4  # each session beat at least once
    assert lost == 0


def test_a_burst_of_sends_ends_at_its_receipt(gateway: GatewayProcess) -> None:
    cfg = {
        "host": "127.0.0.1",
        "port": gateway.http_port,
        "path": "/ws",
        "vhost": "/",
        "source": "127.0.1.2",
        "count": 3,
        "heartbeat": 10_000,
        "concurrency": 3,
        "timeout": 30.0,
    }

    async def run() -> tuple[float, int]:
        stats = Stats()
        sessions: list[IdleSession] = []
        beater = await open_all(cfg, stats, sessions)
        try:
            assert stats.opened == 3, stats.first_error
            async with asyncio.timeout(60):  # bounds a hang only
                # 50 + 1 frames: within the default rate limit's burst (100), which the
                # benchmark's gateway turns off
                seconds = await send_all(sessions, 50)
                again = await send_all(sessions, 1)  # a second burst waits for its own
            lost = stats.lost
        finally:
            beater.cancel()
            for session in sessions:
                session.abort()
            await asyncio.sleep(0)
        return seconds + again, lost

    seconds, lost = asyncio.run(run())
    assert seconds > 0
    assert lost == 0


ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sessions", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,  # bounds a hang only
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_benchmark_measures_each_websocket_path_after_a_warm_up() -> None:
    out = _bench(
        *("--sessions", "20", "--warmup", "5", "--ws-impl", "lean", "aiohttp"),
        *("--settle", "0.2", "--measure", "0.5"),
    )
    assert "[lean] 5 warm-up sessions open" in out
    assert "[aiohttp] 20 sessions open (0 failed)" in out
    assert "VOID" not in out
    table = out.split("every run:\n", 1)[1]
    rows = re.findall(r"^(lean|aiohttp) +20 +\S+ +\S+ +\S+ +0$", table, flags=re.MULTILINE)
    assert rows == ["lean", "aiohttp"], out


def test_the_benchmark_measures_sends_on_each_path() -> None:
    out = _bench("--sends", "20", "--senders", "3", "--ws-impl", "aiohttp", "lean")
    rows = re.findall(r"^(lean|aiohttp) +60 SENDs +[\d.]+ us/SEND", out, flags=re.MULTILINE)
    assert rows == ["aiohttp", "lean"], out
