"""STOMP over WebSocket on a bare :class:`asyncio.Protocol` (``--ws-impl lean``, the default).

aiohttp's ``WebSocketResponse`` keeps its request, response, reader, writer and handler task
alive as long as the socket: about 14 of the 16 KiB an idle session cost. Here the HTTP
guard (:mod:`gateway.transport.http_guard`) reads the first request head of every socket on
the HTTP port; a well-formed ``GET /ws`` upgrade (version 13, no permessage-deflate asked of
the node) comes to :class:`LeanEndpoint`, anything else goes to aiohttp with the bytes read.
The endpoint makes the same checks as the aiohttp handler, with the same functions (draining:
503; the Origin: 403; the handshake token), answers ``101`` with the subprotocol the client
offered first among ``v12.stomp``, ``v11.stomp``, ``v10.stomp``, and hands the socket to a
:class:`LeanWebSocket`: the protocol of the socket from then on and the connection's
:class:`~gateway.ports.Outbound`, one slotted object.

An idle session holds no task: a read that completes messages starts one that feeds them to
the connection in order and ends when they are handled (reads go on meanwhile; past
``QUEUE_PAUSE`` bytes waiting, reading pauses until half of them are). Pings are answered at once;
a close frame is answered with the same code, then the socket closes; a protocol error, an
invalid UTF-8 text or a message over the limit gets its close code (1002, 1007, 1009), as on
aiohttp's path. The node's timers (CONNECT timeout, heart-beats) and the close grace work
through the connection as for any transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from gateway.access import Access
from gateway.connection import Connection
from gateway.metrics import Metrics
from gateway.node import Node
from gateway.settings import Settings
from gateway.transport.base import OpenConnection
from gateway.transport.http_refusal import (
    RequestHead,
    accept_key,
    http_response,
    subprotocol,
    switching_protocols,
)
from gateway.transport.wsframe import (
    CLOSE_NORMAL,
    ERROR,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    close_frame,
    frame,
)

__all__ = ["QUEUE_PAUSE", "LeanEndpoint", "LeanWebSocket"]

log = logging.getLogger("stompgate.ws")

#: Bytes of complete messages waiting for the connection past which reading pauses.
QUEUE_PAUSE = 65536
#: Inbox entries that end the socket, with the close frame to send: the client closed (its
#: code is echoed), or it broke the protocol (our code; it may still be sending).
_END = -1
_FAIL = -2


class _HeadCookies(Mapping[str, str]):
    """The ``Cookie`` header's cookies, parsed only if the token is looked for there."""

    __slots__ = ("_header", "_parsed")

    def __init__(self, header: str) -> None:
        self._header = header
        self._parsed: dict[str, str] | None = None

    def _cookies(self) -> dict[str, str]:
        if self._parsed is None:
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(CookieError):
                jar.load(self._header)
            self._parsed = {name: morsel.value for name, morsel in jar.items()}
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._cookies()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cookies())

    def __len__(self) -> int:
        return len(self._cookies())


class LeanWebSocket(asyncio.Protocol):
    """One upgraded socket: reads client frames, writes server frames, feeds the connection."""

    __slots__ = (
        "_close_sent",
        "_inbox",
        "_loop",
        "_paused",
        "_queued",
        "_reader",
        "_task",
        "_transport",
        "conn",
        "opcode",
    )

    def __init__(self, transport: asyncio.Transport, max_size: int) -> None:
        self._transport = transport
        self._reader = FrameReader(max_size)
        self._inbox: deque[tuple[int, bytes]] | None = None  # messages not yet fed, in order
        self._queued = 0  # their bytes
        self._paused = False  # reading paused: too much queued
        self._task: asyncio.Task[None] | None = None
        # Looked up once: CPython 3.11's get_running_loop() makes a getpid() system call
        # each time (1.7 % of the node's CPU at moderate load when done per message).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._close_sent = False
        self.conn: Connection | None = None  # set once made (it needs this as its Outbound)
        self.opcode = OP_TEXT  # replies use the frame type the client last used

    # -- Outbound ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self._transport
        if self._close_sent or transport.is_closing():
            return
        size = len(data)
        if size < 126:
            transport.write(bytes((0x80 | self.opcode, size)) + data)
        elif size < 16384:
            transport.write(frame(self.opcode, data))
        else:
            transport.write(_header(size, self.opcode))
            transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self) -> None:
        """Start the close handshake (code 1000); the socket closes when the client answers
        (or the connection's close grace aborts it)."""
        if self._close_sent or self._transport.is_closing():
            return
        self._close_sent = True
        self._transport.write(close_frame(CLOSE_NORMAL))

    def abort(self) -> None:
        self._close_sent = True
        self._transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader.done:
            return  # after a close or an error: dropped
        for opcode, payload in reader.feed(data):
            if opcode == OP_PING:
                if not self._close_sent:
                    self._transport.write(frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self._enqueue(_END, frame(OP_CLOSE, payload[:2]))
            elif opcode == ERROR:
                error = reader.error
                assert error is not None
                conn = self.conn
                session = None if conn is None else conn.session_id
                log.info("websocket error: %s", error.reason, extra={"session": session})
                self._enqueue(_FAIL, close_frame(error.code, error.reason))
            elif opcode != OP_PONG:
                self._enqueue(opcode, payload)

    def _enqueue(self, opcode: int, payload: bytes) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append((opcode, payload))
        self._queued += len(payload)
        if self._task is None:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
        elif self._queued > QUEUE_PAUSE and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    async def _run(self) -> None:
        """Feed what is queued to the connection, in order, then end (idle sessions hold no
        task). Reading resumes once half of what paused it is handled."""
        try:
            while inbox := self._inbox:
                opcode, payload = inbox.popleft()
                self._queued -= len(payload)
                if not inbox:
                    self._inbox = None
                if self._paused and self._queued <= QUEUE_PAUSE // 2:
                    self._resume()
                if opcode < 0:
                    self._end(payload, failed=opcode == _FAIL)
                    return
                conn = self.conn
                if conn is None or conn.closing:
                    continue  # after our close: only the client's close matters
                self.opcode = opcode
                await conn.feed(payload)
        except Exception:  # a bug: end this socket only, and say so (aiohttp's path would)
            conn = self.conn
            session = None if conn is None else conn.session_id
            log.exception("websocket session failed", extra={"session": session})
            self._inbox = None
            self._transport.abort()
            if conn is not None:
                conn.close("peer_closed")
        finally:
            self._task = None
            if self._paused:
                self._resume()

    def _resume(self) -> None:
        self._paused = False
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def _end(self, close: bytes, *, failed: bool) -> None:
        """The client closed (answer with its code, then close the socket) or broke the
        protocol (send our code, then end our half only: closing a socket with unread bytes
        would reset it and the client would lose the close frame; what it still sends is
        dropped until it closes, or the connection's close grace aborts it)."""
        self._inbox = None
        transport = self._transport
        if not self._close_sent and not transport.is_closing():
            transport.write(close)
        self._close_sent = True
        if failed and transport.can_write_eof():
            try:
                transport.write_eof()
            except (OSError, RuntimeError):
                transport.close()
        else:
            transport.close()
        if self.conn is not None:
            self.conn.close("peer_closed")

    def eof_received(self) -> bool | None:
        return False  # close: a WebSocket ends with a close frame, never half-open

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_sent = True
        if self.conn is not None:
            self.conn.close("peer_closed")


def _header(size: int, opcode: int) -> bytes:
    first = 0x80 | opcode
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big")
    return bytes((first, 127)) + size.to_bytes(8, "big")


class LeanEndpoint:
    """Takes WebSocket upgrades of ``/ws`` from the HTTP guard (:meth:`wants`, :meth:`upgrade`)."""

    def __init__(
        self,
        settings: Settings,
        node: Node,
        access: Access,
        metrics: Metrics,
        open_connection: OpenConnection,
    ) -> None:
        self.settings = settings
        self.node = node
        self.access = access
        self.metrics = metrics
        self.open_connection = open_connection
        # The same bound as aiohttp's path: a message may carry a whole frame and then some.
        self.max_size = settings.max_frame_size + 65536

    def wants(self, head: RequestHead) -> bool:
        """Whether this request is a WebSocket upgrade the lean path serves; anything else
        (other paths and methods, a malformed or old-version upgrade) goes to aiohttp, which
        answers it as it always has."""
        headers = head.headers
        return (
            head.method == "GET"
            and head.path == self.settings.ws_path
            and headers.get("upgrade", "").lower() == "websocket"
            and "upgrade" in headers.get("connection", "").lower()
            and headers.get("sec-websocket-version", "") == "13"
            and accept_key(headers.get("sec-websocket-key", "")) is not None
        )

    def upgrade(
        self, head: RequestHead, transport: asyncio.Transport, ip: str, rest: bytes
    ) -> None:
        """Answer the upgrade ``head`` (one :meth:`wants`) on ``transport``, counted against
        ``ip``'s limit by the guard (this takes the count over), and serve the socket;
        ``rest``: what the client sent after the head."""
        access = self.access
        headers = head.headers
        if self.node.draining:
            access.close_ip(ip)
            transport.write(http_response("503 Service Unavailable", "server shutting down"))
            transport.close()
            return
        refusal = access.check_origin(headers.get("origin"), headers.get("host", ""))
        if refusal is not None:
            access.close_ip(ip)
            self.metrics.errors.labels("origin").inc()
            transport.write(http_response(f"403 {refusal}", refusal))
            transport.close()
            return
        try:
            accept = accept_key(headers["sec-websocket-key"])
            assert accept is not None  # wants() checked it
            query = dict(parse_qsl(head.query, keep_blank_values=True)[::-1])  # first wins
            token = access.handshake_token_of(
                headers, query, _HeadCookies(headers.get("cookie", ""))
            )
            transport.write(switching_protocols(accept, subprotocol(headers)))
            ws = LeanWebSocket(transport, self.max_size)
            transport.set_protocol(ws)
        except BaseException:
            access.close_ip(ip)  # no connection holds the count yet
            transport.abort()
            raise
        ws.conn = self.open_connection(ws, transport_name="ws", peer=ip, handshake_token=token)
        if rest:
            ws.data_received(rest)
