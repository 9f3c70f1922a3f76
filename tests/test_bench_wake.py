"""``make bench-wake``'s client: evenly spaced frames, and a refused session voids the figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from benchmarks.bench_wake import refused, send_evenly


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
            if data == b"bye":
                writer.write(b"ERROR\nmessage:no\n\n\x00")
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    yield port, received
    srv.close()
    await srv.wait_closed()


async def test_frames_go_round_robin_at_the_rate(server: tuple[int, list[bytes]]) -> None:
    port, received = server
    sessions = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    writers = [w for _, w in sessions]
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = await send_evenly(writers, [b"a", b"b", b"c"], rate=100.0, seconds=0.3)
    took = loop.time() - started
    await asyncio.sleep(0.05)
    assert 29 <= sent <= 31
    assert 0.25 <= took <= 0.6
    joined = b"".join(received)
    assert sorted(joined.count(x) for x in (b"a", b"b", b"c")) == [10, 10, 10]
    for w in writers:
        w.close()
        await w.wait_closed()


async def test_silence_is_fine_an_error_or_a_close_is_not(server: tuple[int, list[bytes]]) -> None:
    port, _ = server
    quiet_reader, quiet = await asyncio.open_connection("127.0.0.1", port)
    assert not await refused(quiet_reader)
    error_reader, scolded = await asyncio.open_connection("127.0.0.1", port)
    scolded.write(b"bye")
    await asyncio.sleep(0.05)
    assert await refused(error_reader)
    closed_reader, closing = await asyncio.open_connection("127.0.0.1", port)
    closing.write_eof()
    await asyncio.sleep(0.05)
    assert await refused(closed_reader)
    for w in (quiet, scolded, closing):
        w.close()
        await w.wait_closed()
