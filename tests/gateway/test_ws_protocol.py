"""The WebSocket protocol on the wire, over each path (``--ws-impl lean|aiohttp``), with a raw
client: which path answers an upgrade (and that the HTTP API shares the port), ping/pong,
fragments, binary in and out, the close handshake both ways, the close codes of violations
(1002, 1007, 1009), and a first STOMP frame sent with the upgrade request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.transport.wsframe import unmask_int
from tests.support.gateway_proc import GatewayProcess

CONNECT = b"CONNECT\naccept-version:1.2\nhost:x\nlogin:guest\npasscode:guest\n\n\x00"
MAX_FRAME_SIZE = 65536
#: A message may carry a frame and then some (the same bound on both paths).
MAX_MESSAGE = MAX_FRAME_SIZE + 65536
PER_IP = 3


@pytest.fixture(scope="module")
def gateway(amqp_url: str, log_dir: Path, ws_impl: str) -> Iterator[GatewayProcess]:
    node = GatewayProcess(
        amqp_url=amqp_url,
        node_id=f"gw-wsp-{ws_impl}",
        ws_impl=ws_impl,
        env={
            "STOMPGATE_MAX_FRAME_SIZE": str(MAX_FRAME_SIZE),
            "STOMPGATE_MAX_CONNECTIONS_PER_IP": str(PER_IP),
        },
    )
    node.start(log_dir)
    yield node
    node.stop()


def upgrade_request(port: int, version: str = "13") -> bytes:
    """An upgrade as a browser sends it (offering permessage-deflate)."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Protocol: v11.stomp, v12.stomp\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask_int(payload, key)


class RawWs:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.head = ""

    @classmethod
    async def open(cls, port: int, *, first: bytes = b"", version: str = "13") -> RawWs:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ws = cls(reader, writer)
        writer.write(upgrade_request(port, version) + first)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        ws.head = head.decode("latin-1")
        return ws

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame (final, unmasked): opcode and payload."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        assert first & 0x80, "a server frame that is not final"
        assert not second & 0x80, "a masked server frame"
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, await asyncio.wait_for(self.reader.readexactly(size), 10)

    async def close_code(self) -> int:
        """Skip data frames to the server's close frame; its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    async def expect_eof(self) -> None:
        assert await asyncio.wait_for(self.reader.read(), 10) == b""

    def close(self) -> None:
        self.writer.close()


async def test_the_configured_path_answers_upgrades_and_aiohttp_the_rest(
    gateway: GatewayProcess, ws_impl: str
) -> None:
    ws = await RawWs.open(gateway.http_port)
    try:
        assert ws.head.startswith("HTTP/1.1 101 ")
        assert "Sec-WebSocket-Protocol: v11.stomp\r\n" in ws.head  # the client's first offer
        assert ("aiohttp" in ws.head) is (ws_impl == "aiohttp")  # aiohttp's Server header
        assert "Sec-WebSocket-Extensions" not in ws.head  # no deflate unless turned on
    finally:
        ws.close()
    # The HTTP API on the same port; then an upgrade on the kept-alive socket (aiohttp's).
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(upgrade_request(gateway.http_port))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"aiohttp" in head
    finally:
        writer.close()
    # An older protocol version is aiohttp's to answer, on both paths.
    ws = await RawWs.open(gateway.http_port, version="8")
    try:
        assert ws.head.startswith("HTTP/1.1 101 ")
        assert "aiohttp" in ws.head
    finally:
        ws.close()


async def test_fragments_make_one_message_and_a_ping_between_them_is_answered(
    gateway: GatewayProcess,
) -> None:
    ws = await RawWs.open(gateway.http_port)
    try:
        ws.send(client_frame(0x1, CONNECT[:10], fin=False))
        ws.send(client_frame(0x9, b"are you there"))
        ws.send(client_frame(0x0, CONNECT[10:40], fin=False))
        ws.send(client_frame(0x0, CONNECT[40:]))
        assert await ws.frame() == (0xA, b"are you there")
        opcode, payload = await ws.frame()
        assert opcode == 0x1
        assert payload.startswith(b"CONNECTED\nversion:1.2\n")
        ws.send(client_frame(0x8, (1000).to_bytes(2, "big")))  # the client closes ...
        assert await ws.close_code() == 1000  # ... is answered, and the socket closed
        await ws.expect_eof()
    finally:
        ws.close()


async def test_binary_in_binary_out_and_a_frame_sent_with_the_upgrade(
    gateway: GatewayProcess,
) -> None:
    ws = await RawWs.open(gateway.http_port, first=client_frame(0x2, CONNECT))
    try:
        opcode, payload = await ws.frame()
        assert (opcode, payload[:10]) == (0x2, b"CONNECTED\n")
        # A STOMP error from the server: ERROR, then its close (1000); our answer ends it.
        ws.send(client_frame(0x2, b"BOGUS\n\n\x00"))
        opcode, payload = await ws.frame()
        assert (opcode, payload[:6]) == (0x2, b"ERROR\n")
        assert await ws.close_code() == 1000
        ws.send(client_frame(0x8, (1000).to_bytes(2, "big")))
        await ws.expect_eof()
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("case", "code"),
    [("unmasked", 1002), ("reserved-bits", 1002), ("not-utf8", 1007), ("too-big", 1009)],
)
async def test_a_violation_gets_its_close_code(
    gateway: GatewayProcess, ws_impl: str, case: str, code: int
) -> None:
    """The close frame arrives before the socket ends, even with the client still sending
    (the 1009 case: a reset would lose it). Where aiohttp's path differs: it takes an
    unmasked client frame, which RFC 6455 says to refuse, and it resets a socket sending a
    message over the limit (the close frame may be lost)."""
    lenient = ws_impl == "aiohttp" and case in ("unmasked", "too-big")
    data = {
        "unmasked": client_frame(0x1, CONNECT, mask=False),
        "reserved-bits": client_frame(0x1 | 0x40, CONNECT),
        "not-utf8": client_frame(0x1, b"CONNECT\n\n\xff\xfe\x00"),
        "too-big": client_frame(0x2, b"x" * (MAX_MESSAGE + 1)),
    }[case]
    ws = await RawWs.open(gateway.http_port)
    try:
        ws.send(data)
        if lenient and case == "unmasked":
            opcode, payload = await ws.frame()
            assert (opcode, payload[:10]) == (0x1, b"CONNECTED\n")
        elif lenient:
            with contextlib.suppress(ConnectionResetError):
                await ws.close_code()  # if it arrives at all
                await ws.expect_eof()
        else:
            assert await ws.close_code() == code
            await ws.expect_eof()
    finally:
        ws.close()


async def connected(port: int) -> RawWs:
    ws = await RawWs.open(port, first=client_frame(0x1, CONNECT))
    try:
        _, payload = await ws.frame()
        assert payload.startswith(b"CONNECTED\n"), payload
    except BaseException:
        ws.close()
        raise
    return ws


async def test_a_websocket_session_holds_its_ip_slot_until_it_ends(
    gateway: GatewayProcess,
) -> None:
    """The upgrade takes the socket's per-IP count over from the HTTP guard: the sessions
    count, one more is refused, and a closed session gives its slot back."""
    port = gateway.http_port
    held: list[RawWs] = []
    try:
        deadline = asyncio.get_running_loop().time() + 5  # earlier cases' sockets are gone
        while len(held) < PER_IP:
            try:
                held.append(await connected(port))
            except (AssertionError, asyncio.IncompleteReadError, ConnectionError):
                assert asyncio.get_running_loop().time() < deadline, "no slots came back"
                await asyncio.sleep(0.1)
        refused = await RawWs.open(port)
        try:
            _, payload = await refused.frame()
            assert b"Too many connections" in payload
        finally:
            refused.close()
        leaving = held.pop()
        leaving.send(client_frame(0x8, (1000).to_bytes(2, "big")))
        assert await leaving.close_code() == 1000
        await leaving.expect_eof()
        leaving.close()
        for _ in range(50):
            try:
                held.append(await connected(port))
                break
            except (AssertionError, asyncio.IncompleteReadError, ConnectionError):
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the closed session's slot did not come back")
    finally:
        for ws in held:
            ws.close()


async def test_with_compression_on_aiohttp_serves_websockets_and_negotiates_deflate(
    amqp_url: str, log_dir: Path
) -> None:
    node = GatewayProcess(
        amqp_url=amqp_url, node_id="gw-wsp-deflate", env={"STOMPGATE_WS_COMPRESS": "true"}
    )
    node.start(log_dir)
    try:
        ws = await RawWs.open(node.http_port)
        try:
            assert ws.head.startswith("HTTP/1.1 101 ")
            assert "aiohttp" in ws.head
            assert "Sec-WebSocket-Extensions: permessage-deflate" in ws.head
        finally:
            ws.close()
    finally:
        node.stop()
