"""``make bench-sessions``'s load client: its frames are what a WebSocket server reads, and its
sessions upgrade, CONNECT with heart-beats and stay up on a real gateway while it beats.

Nothing here depends on the machine's speed: the waits are bounded by generous deadlines that
only stop a hang, and the one interval asserted (sessions kept past two heart-beat graces)
holds however slow the machine is as long as the client beats (it does so from a timer on
its own loop). Every socket is closed by the test, also when an assertion fails.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from benchmarks.bench_sessions import IdleSession, Stats, open_all, ws_frame
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
