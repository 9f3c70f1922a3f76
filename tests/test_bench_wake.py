"""``make bench-wake``'s client: evenly spaced frames, and a refused session voids the figures.

Nothing here depends on how fast the machine is: the number of frames and their order follow
from the arguments alone, the only time asserted is a lower bound the loop guarantees (it
sleeps until each frame is due), and what the server received is read after every connection
has ended, not after a pause. Every socket either side opens is closed by the fixtures, also
when an assertion fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from benchmarks.bench_wake import refused, send_evenly

Session = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Server:
    """A TCP server that keeps what each connection sent; ``bye`` earns an ERROR frame."""

    port: int = 0
    #: What each connection sent, one entry per connection once it has ended.
    received: list[bytes] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = bytearray()
        try:
            while chunk := await reader.read(65536):
                data += chunk
                if data.endswith(b"bye"):
                    writer.write(b"ERROR\nmessage:no\n\n\x00")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            async with self.changed:
                self.received.append(bytes(data))
                self.changed.notify_all()

    async def ended(self, connections: int) -> None:
        """Wait until ``connections`` connections have ended on the server's side."""
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.received) >= connections)


@dataclass
class Recorder:
    """A session's writer that also logs, in order, which session was given which frame."""

    session: int
    writer: asyncio.StreamWriter
    log: list[tuple[int, bytes]]

    def write(self, data: bytes) -> None:
        self.log.append((self.session, data))
        self.writer.write(data)


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    srv = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.fixture
async def connect(server: Server) -> AsyncIterator[Callable[[], Awaitable[Session]]]:
    """Opens connections to ``server``. Afterwards, pass or fail, every one is closed and the
    server has closed its end of each."""
    opened: list[asyncio.StreamWriter] = []

    async def open_one() -> Session:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        opened.append(writer)
        return reader, writer

    try:
        yield open_one
    finally:
        await close_all(opened)
        await server.ended(len(opened))


async def test_frames_go_round_robin_at_the_rate(
    server: Server, connect: Callable[[], Awaitable[Session]]
) -> None:
    writers = [(await connect())[1] for _ in range(3)]
    log: list[tuple[int, bytes]] = []
    frames = [b"a", b"b", b"c"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = await send_evenly(
        [Recorder(i, w, log) for i, w in enumerate(writers)], frames, rate=100.0, seconds=0.3
    )
    took = loop.time() - started
    assert sent == 30
    assert log == [(n % 3, frames[n % 3]) for n in range(30)]
    # It waits until each frame is due, so it cannot be done sooner (a busy machine only
    # makes it later, which is not asserted).
    assert took >= 0.29
    await close_all(writers)
    await server.ended(3)
    assert sorted(server.received) == [b"a" * 10, b"b" * 10, b"c" * 10]


async def test_silence_is_fine_an_error_or_a_close_is_not(
    connect: Callable[[], Awaitable[Session]],
) -> None:
    quiet_reader, _ = await connect()
    assert not await refused(quiet_reader)  # the server never writes to it: always silence
    error_reader, scolded = await connect()
    scolded.write(b"bye")
    assert await refused(error_reader, wait=None)
    closed_reader, closing = await connect()
    closing.write_eof()
    assert await refused(closed_reader, wait=None)
