"""The lean WebSocket protocol (gateway/transport/lean_ws.py) around a connection that takes
its time: messages are fed in order, one task only while there is work (none when idle),
reading pauses past QUEUE_PAUSE bytes waiting and resumes when they are handled, and a close
frame waits its turn behind the messages before it."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.transport.lean_ws import QUEUE_PAUSE, LeanWebSocket
from gateway.transport.wsframe import unmask_int


class FakeTransport:
    """What LeanWebSocket uses of an asyncio transport, recorded."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_paused(self) -> bool:
        return self.paused

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closed = True


class GatedConnection:
    """Stands for the Connection: each feed waits until the gate opens."""

    session_id = "test"

    def __init__(self) -> None:
        self.fed: list[bytes] = []
        self.gate = asyncio.Event()
        self.closing = False
        self.closed_as: str | None = None

    async def feed(self, data: bytes) -> None:
        await self.gate.wait()
        self.fed.append(data)

    def close(self, reason: str = "closed") -> None:
        self.closing = True
        self.closed_as = reason


def masked(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + key + unmask_int(payload, key)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_messages_in_order_a_task_only_while_busy_and_reading_paused_past_the_limit() -> None:
    transport = FakeTransport()
    ws = LeanWebSocket(transport, 1 << 20)  # type: ignore[arg-type]
    conn = GatedConnection()
    ws.conn = conn  # type: ignore[assignment]
    idle_tasks = len(asyncio.all_tasks())
    chunk = b"x" * 30000
    messages = [b"%d" % n + chunk for n in range(4)]  # 120 kB > QUEUE_PAUSE
    assert sum(map(len, messages)) > QUEUE_PAUSE
    for message in messages:
        ws.data_received(masked(0x2, message))
    ws.data_received(masked(0x9, b"ping"))  # answered at once, busy or not
    await settle()
    assert transport.written == [bytes((0x8A, 4)) + b"ping"]
    assert transport.is_paused()
    assert len(asyncio.all_tasks()) == idle_tasks + 1
    conn.gate.set()
    await settle()
    assert conn.fed == messages
    assert not transport.is_paused()
    assert ws.opcode == 0x2  # replies go out as binary, as the client wrote
    assert len(asyncio.all_tasks()) == idle_tasks  # idle: no task left behind


async def test_a_close_waits_for_the_messages_before_it_then_is_answered_with_its_code() -> None:
    transport = FakeTransport()
    ws = LeanWebSocket(transport, 1 << 20)  # type: ignore[arg-type]
    conn = GatedConnection()
    ws.conn = conn  # type: ignore[assignment]
    ws.data_received(masked(0x1, b"first") + masked(0x8, (4000).to_bytes(2, "big") + b"bye"))
    await settle()
    assert conn.fed == []  # the message before it is still being handled ...
    assert not conn.closing  # ... so the close waits
    conn.gate.set()
    await settle()
    assert conn.fed == [b"first"]
    assert transport.written == [bytes((0x88, 2)) + (4000).to_bytes(2, "big")]
    assert conn.closed_as == "peer_closed"
    assert transport.is_closing()
    ws.write(b"too late")  # after the close: nothing more goes out
    assert len(transport.written) == 1


async def test_our_close_is_1000_and_the_socket_ends_with_the_clients_answer() -> None:
    transport = FakeTransport()
    ws = LeanWebSocket(transport, 1 << 20)  # type: ignore[arg-type]
    conn = GatedConnection()
    conn.gate.set()
    ws.conn = conn  # type: ignore[assignment]
    ws.write(b"ERROR\n\n\x00")
    ws.close()
    assert transport.written == [bytes((0x81, 8)) + b"ERROR\n\n\x00", bytes((0x88, 2, 0x03, 0xE8))]
    assert not transport.is_closing()  # waiting for the client's close
    ws.data_received(masked(0x8, (1000).to_bytes(2, "big")))
    await settle()
    assert transport.is_closing()
    assert len(transport.written) == 2  # not answered twice


class FailingConnection(GatedConnection):
    async def feed(self, data: bytes) -> None:
        raise RuntimeError("a bug")


async def test_a_bug_while_handling_a_message_ends_that_socket_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FakeTransport()
    ws = LeanWebSocket(transport, 1 << 20)  # type: ignore[arg-type]
    conn = FailingConnection()
    ws.conn = conn  # type: ignore[assignment]
    idle_tasks = len(asyncio.all_tasks())
    ws.data_received(masked(0x1, b"SEND\n\n\x00"))
    await settle()
    assert transport.is_closing()
    assert conn.closed_as == "peer_closed"
    assert "websocket session failed" in caplog.text
    assert len(asyncio.all_tasks()) == idle_tasks
