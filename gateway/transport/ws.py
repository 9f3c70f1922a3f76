"""STOMP over WebSocket, served by aiohttp at ``/ws`` (``--ws-impl aiohttp``, ``--ws-compress``,
and what the lean path of :mod:`gateway.transport.lean_ws` leaves to aiohttp).

aiohttp does the HTTP upgrade, reads and unmasks client frames, answers pings and closes. The
hot direction, server to client, bypasses its coroutine ``send_*`` API: server frames are
never masked, so framing is a 2-10 byte header in front of the payload, written straight to
the transport without a task or an await. aiohttp's own writer only sends control frames
(pong, close), also synchronously and whole, so the two never interleave inside a frame.
permessage-deflate is off unless the operator turns it on (it doubles CPU per frame and costs
100-200 KB per connection); with it on, writes go through aiohttp's writer instead.

STOMP frames may be split across WebSocket messages and several may share one; the session
parser is streaming, so each message is simply fed to it. Replies use the frame type the
client last used (text or binary), as RabbitMQ's Web-STOMP does.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from aiohttp import WSMsgType, web

from gateway.access import Access, LimitExceeded
from gateway.errors import ClientError
from gateway.metrics import Metrics
from gateway.node import Node
from gateway.settings import Settings
from gateway.transport.base import OpenConnection, refusal_frame
from gateway.transport.http_guard import HttpGuard
from gateway.transport.http_refusal import SUBPROTOCOLS

log = logging.getLogger("stompgate.ws")


_OP_TEXT = 0x1
_OP_BINARY = 0x2
#: What ends ``async for msg in ws`` (aiohttp's ``__anext__``).
_END = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED))
#: How long a refused WebSocket (not counted in any limit) may take to answer our close.
REFUSED_CLOSE_TIMEOUT = 1.0


_HEAD16 = struct.Struct("!BBH").pack


def frame_header(length: int, opcode: int) -> bytes:
    """An unmasked, final WebSocket frame header for a payload of ``length`` bytes."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _HEAD16(first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class WebSocketOutbound:
    """Synchronous writes of STOMP bytes as WebSocket messages."""

    __slots__ = ("_closed", "_compress", "_transport", "_ws", "opcode")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport
        self._closed = False
        self._compress = bool(ws.compress)  # negotiated once, at the upgrade
        self.opcode = _OP_TEXT

    def write(self, data: bytes) -> None:
        if self._closed or self._transport.is_closing():
            return
        if self._compress:
            task = asyncio.get_running_loop().create_task(self._ws.send_bytes(data))
            task.add_done_callback(_ignore_result)
            return
        size = len(data)
        if size < 126:
            self._transport.write(bytes((0x80 | self.opcode, size)) + data)
        elif size < 16384:
            self._transport.write(_HEAD16(0x80 | self.opcode, 126, size) + data)
        else:
            self._transport.write(frame_header(size, self.opcode))
            self._transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task = asyncio.get_running_loop().create_task(self._ws.close())
        task.add_done_callback(_ignore_result)

    def abort(self) -> None:
        self._closed = True
        self._transport.abort()


def _ignore_result(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


class WebSocketEndpoint:
    """The aiohttp handler for ``/ws``."""

    def __init__(
        self,
        settings: Settings,
        node: Node,
        access: Access,
        metrics: Metrics,
        open_connection: OpenConnection,
        guard: HttpGuard | None = None,
    ) -> None:
        """``guard`` counted the socket and timed its request (the HTTP port's): the endpoint
        takes the socket over when it upgrades it."""
        self.settings = settings
        self.node = node
        self.access = access
        self.metrics = metrics
        self.open_connection = open_connection
        self.guard = guard
        # One int for every socket (each WebSocketResponse keeps the value it is given).
        self._max_msg_size = settings.max_frame_size + 65536

    async def handle(self, request: web.Request) -> web.StreamResponse:
        access = self.access
        if self.node.draining:
            raise web.HTTPServiceUnavailable(reason="server shutting down")
        refusal = access.check_handshake(request)
        if refusal is not None:
            self.metrics.errors.labels("origin").inc()
            raise web.HTTPForbidden(reason=refusal, text=refusal)
        peer = request.remote or "?"
        if self.guard is not None:
            self.guard.hand_over(request.transport)  # its count ends, ours begins
        try:
            access.open_ip(peer)
        except LimitExceeded as exc:
            self.metrics.errors.labels(exc.kind).inc()
            return await _refuse(request, exc)
        settings = self.settings
        ws = web.WebSocketResponse(
            protocols=SUBPROTOCOLS,
            compress=settings.ws_compress,
            max_msg_size=self._max_msg_size,
            autoping=True,
            heartbeat=None,
        )
        try:
            await ws.prepare(request)
        except BaseException:
            access.close_ip(peer)
            raise
        transport = request.transport
        if transport is None:  # the client went away during the handshake
            access.close_ip(peer)
            return ws
        out = WebSocketOutbound(ws, transport)
        conn = self.open_connection(
            out, transport_name="ws", peer=peer, handshake_token=access.handshake_token(request)
        )
        try:
            # ``receive()`` rather than ``async for``: the iterator's extra coroutine would
            # stay suspended (about 200 bytes) in every idle connection.
            while True:
                msg = await ws.receive()
                if msg.type in _END:
                    break
                if msg.type is WSMsgType.TEXT:
                    out.opcode = _OP_TEXT
                    await conn.feed(msg.data.encode("utf-8"))
                elif msg.type is WSMsgType.BINARY:
                    out.opcode = _OP_BINARY
                    await conn.feed(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    log.info(
                        "websocket error: %s", ws.exception(), extra={"session": conn.session_id}
                    )
                    break
                if conn.closing:
                    break
        finally:
            conn.close("peer_closed")
        return ws


async def _refuse(request: web.Request, error: ClientError) -> web.WebSocketResponse:
    """Upgrade only to say why the socket is refused: one ERROR frame, then close.

    A browser's WebSocket API shows no HTTP status or reason, so a refusal before the upgrade
    would leave a STOMP client guessing. Nothing is escaped: no version is negotiated yet (as
    the session does before CONNECT, and as the TCP listener does).
    """
    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS, compress=False, timeout=REFUSED_CLOSE_TIMEOUT
    )
    await ws.prepare(request)
    await ws.send_str(refusal_frame(error).decode())
    await ws.close()
    return ws
