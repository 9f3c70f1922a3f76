"""Heart-beats as the client asks (issue 14.5), over real sockets against a gateway process.

The node's ``--heartbeat-send-ms``/``--heartbeat-receive-ms`` (default 1000) are its ``sx,sy``
in the STOMP negotiation: a floor. A client that asks for 1-second heart-beats gets them
(RabbitMQ answers a 1 s wish with 1 s), one that stops sending is cut after the negotiated
interval times ``--heartbeat-grace``, and one that asks for 100 ms gets the floor.

Bounds are generous (pings counted over seconds, a cut asserted well under the old 20 s):
nothing here measures this machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from tests.support.gateway_proc import GatewayProcess

VERSIONS = ("1.1", "1.2")
TRANSPORTS = ("tcp", "ws")


@dataclass
class Pipe:
    write: Callable[[bytes], Awaitable[None]]
    read: Callable[[], Awaitable[bytes]]  # b"" once the gateway closed


@contextlib.asynccontextmanager
async def pipe(gateway: GatewayProcess, transport: str) -> AsyncIterator[Pipe]:
    if transport == "tcp":
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.stomp_port)

        async def write_tcp(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        try:
            yield Pipe(write_tcp, lambda: reader.read(65536))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gateway.ws_url, protocols=("v12.stomp", "v11.stomp")) as ws,
    ):

        async def write_ws(data: bytes) -> None:
            await ws.send_str(data.decode())

        async def read_ws() -> bytes:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return msg.data.encode() if isinstance(msg.data, str) else bytes(msg.data)
            return b""

        yield Pipe(write_ws, read_ws)


async def connect(link: Pipe, version: str, heart_beat: str) -> dict[str, str]:
    """CONNECT asking for ``heart-beat``; the CONNECTED frame's headers."""
    await link.write(
        f"CONNECT\naccept-version:{version}\nhost:stompgate\nlogin:guest\npasscode:guest\n"
        f"heart-beat:{heart_beat}\n\n\x00".encode()
    )
    data = b""
    while b"\x00" not in data:
        chunk = await asyncio.wait_for(link.read(), 10)
        assert chunk, f"closed before CONNECTED: {data!r}"
        data += chunk
    frame, rest = data.split(b"\x00", 1)
    assert rest.strip(b"\r\n") == b"", rest
    command, *lines = frame.decode().split("\n\n", 1)[0].split("\n")
    assert command == "CONNECTED", frame
    return dict(line.split(":", 1) for line in lines)


async def count_pings(link: Pipe, seconds: float, *, ping_every: float) -> list[float]:
    """For ``seconds``, send a heart-beat every ``ping_every`` s and note when each
    heart-beat EOL arrives from the gateway (seconds from the start)."""
    arrivals: list[float] = []
    started = time.monotonic()

    async def beat() -> None:
        while True:
            await asyncio.sleep(ping_every)
            await link.write(b"\n")

    async def listen() -> None:
        while True:
            chunk = await link.read()
            assert chunk, "the gateway closed the session"
            assert chunk.strip(b"\r\n") == b"", f"a frame instead of heart-beats: {chunk!r}"
            arrivals.extend([time.monotonic() - started] * chunk.count(b"\n"))

    tasks = [asyncio.create_task(beat()), asyncio.create_task(listen())]
    done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # an assertion inside re-raises here
    return arrivals


async def read_until_closed(link: Pipe, within: float) -> bytes:
    data = b""
    async with asyncio.timeout(within):
        while chunk := await link.read():
            data += chunk
    return data


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_one_second_wish_gets_one_second_heart_beats(
    gateway: GatewayProcess, version: str, transport: str
) -> None:
    async with pipe(gateway, transport) as link:
        connected = await connect(link, version, "1000,1000")
        assert connected["heart-beat"] == "1000,1000"
        arrivals = await count_pings(link, 4.5, ping_every=0.5)
    # about one a second (the old 10 s default sent none in this time); the bound leaves room
    # for a busy machine, and a ping every 100 ms would break the upper one
    assert 2 <= len(arrivals) <= 8, arrivals


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_client_that_goes_silent_after_asking_for_one_second_is_cut(
    gateway: GatewayProcess, version: str, transport: str
) -> None:
    async with pipe(gateway, transport) as link:
        await connect(link, version, "1000,1000")
        started = time.monotonic()  # from here on the client sends nothing
        data = await read_until_closed(link, within=30)
        elapsed = time.monotonic() - started
    assert b"message:Heart-beat timeout\n" in data, data
    assert b"(expected every 1000 ms)" in data, data
    # 1 s times the grace (2.0), checked every tick; the old 10 s default took 20 s
    assert elapsed < 10, elapsed


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_client_asking_for_100_ms_gets_the_floor(
    gateway: GatewayProcess, version: str, transport: str
) -> None:
    async with pipe(gateway, transport) as link:
        connected = await connect(link, version, "100,100")
        assert connected["heart-beat"] == "1000,1000"
        # the client beats every 500 ms, slower than its own 100 ms promise but within the
        # floor: the node expects max(100, 1000) ms and keeps it; and it pings at most about
        # once a second, not every 100 ms (that would be some 30 in this time)
        arrivals = await count_pings(link, 3.0, ping_every=0.5)
    assert 1 <= len(arrivals) <= 6, arrivals
