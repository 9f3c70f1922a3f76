"""STOMP over WebSocket framing: subprotocols, text and binary, split and batched frames; over
each WebSocket path (``--ws-impl``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway_proc import GatewayProcess


@pytest.fixture(scope="module")
def gateway(amqp_url: str, log_dir: Path, ws_impl: str) -> Iterator[GatewayProcess]:
    node = GatewayProcess(amqp_url=amqp_url, node_id=f"gw-ws-{ws_impl}", ws_impl=ws_impl)
    node.start(log_dir)
    yield node
    node.stop()


CONNECT = "CONNECT\naccept-version:1.2\nhost:x\nlogin:guest\npasscode:guest\n\n\x00"


async def read_frames(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    """Read until ``count`` complete frames arrived (frames may share a message)."""
    buffer = ""
    while buffer.count("\x00") < count:
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.TEXT:
            buffer += msg.data
        elif msg.type is aiohttp.WSMsgType.BINARY:
            buffer += msg.data.decode()
        else:
            raise AssertionError(f"unexpected {msg.type}: {buffer!r}")
    return [frame.lstrip("\n") for frame in buffer.split("\x00")[:count]]


async def test_subprotocol_and_split_and_batched_frames(gateway: GatewayProcess) -> None:
    room = f"/topic/room.ws-{uuid.uuid4().hex[:8]}"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(gateway.ws_url, protocols=("v12.stomp", "v11.stomp")) as ws,
    ):
        assert ws.protocol == "v12.stomp"
        # one CONNECT frame split over three WebSocket messages
        for part in (CONNECT[:10], CONNECT[10:30], CONNECT[30:]):
            await ws.send_str(part)
        (connected,) = await read_frames(ws, 1)
        assert connected.startswith("CONNECTED\nversion:1.2\n")
        # SUBSCRIBE and two SENDs in one WebSocket message
        batch = (
            f"SUBSCRIBE\nid:s\ndestination:{room}\nreceipt:r1\n\n\x00"
            f"SEND\ndestination:{room}\nreceipt:r2\n\none\x00\n"
            f"SEND\ndestination:{room}\ncontent-length:3\n\ntwo\x00"
        )
        await ws.send_str(batch)
        frames = await read_frames(ws, 4)
    commands = [frame.split("\n", 1)[0] for frame in frames]
    assert commands.count("RECEIPT") == 2
    bodies = [f.split("\n\n", 1)[1] for f in frames if f.startswith("MESSAGE")]
    assert bodies == ["one", "two"]


async def test_binary_frames_with_nul_bytes_in_the_body(gateway: GatewayProcess) -> None:
    room = f"/topic/room.bin-{uuid.uuid4().hex[:8]}"
    payload = b"\x00\x01binary\x00\xff"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(gateway.ws_url, protocols=("v12.stomp",)) as ws,
    ):
        await ws.send_bytes(CONNECT.encode())
        connected = await ws.receive(timeout=10)
        assert connected.type is aiohttp.WSMsgType.BINARY, "replies use the client's frame type"
        await ws.send_bytes(f"SUBSCRIBE\nid:s\ndestination:{room}\nreceipt:r\n\n\x00".encode())
        await ws.receive(timeout=10)  # RECEIPT
        header = f"SEND\ndestination:{room}\ncontent-length:{len(payload)}\n\n".encode()
        await ws.send_bytes(header + payload + b"\x00")
        msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.BINARY
    head, _, rest = msg.data.partition(b"\n\n")
    assert f"content-length:{len(payload)}".encode() in head
    assert rest == payload + b"\x00"


async def test_a_protocol_error_is_one_error_frame_then_close(gateway: GatewayProcess) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(gateway.ws_url, protocols=("v12.stomp",)) as ws,
    ):
        await ws.send_str("SEND\ndestination:/topic/x\n\nbefore connect\x00")
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT
        assert msg.data.startswith("ERROR\n")
        assert "message:" in msg.data
        closing = await ws.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
