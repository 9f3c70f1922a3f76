"""Plain STOMP over TCP for backend services (stomp.py, Java clients, ``nc``), or STOMP over
TLS when the listener is given a server context (`gateway.transport.tls`).

Its limits are its own (``--tcp-max-frame-size``, ``--tcp-frames-per-second``, ...): the
connections it opens are given the TCP listener's. A session that ends with an ERROR is
closed politely: our half of the stream is shut after the ERROR, and what the client still
sends is read and dropped until it closes, so it reads the ERROR rather than a reset.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from gateway.access import Access, LimitExceeded
from gateway.metrics import Metrics
from gateway.node import Node
from gateway.transport.base import OpenConnection, refusal_frame

log = logging.getLogger("stompgate.tcp")

READ_CHUNK = 65536


class TcpOutbound:
    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self) -> None:
        """Send what is queued, then end our half of the stream; reading goes on (the
        listener drains what the client still sends), so a client that is still writing
        reads our ERROR instead of a reset."""
        transport = self._transport
        if transport.is_closing():
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
                return
            except (OSError, RuntimeError):
                pass
        transport.close()

    def abort(self) -> None:
        self._transport.abort()


class TcpListener:
    def __init__(
        self, node: Node, access: Access, metrics: Metrics, open_connection: OpenConnection
    ) -> None:
        self.node = node
        self.access = access
        self.metrics = metrics
        self.open_connection = open_connection
        self.server: asyncio.Server | None = None

    async def start(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
    ) -> int:
        """Listen (with ``tls``: STOMP over TLS, each handshake bounded by
        ``handshake_timeout`` seconds); returns the port bound."""
        self.server = await asyncio.start_server(
            self._serve,
            host,
            port,
            limit=READ_CHUNK,
            ssl=tls,
            ssl_handshake_timeout=handshake_timeout if tls is not None else None,
        )
        sockets = self.server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.node.draining:
            writer.close()
            return
        peername = writer.get_extra_info("peername")
        peer = peername[0] if isinstance(peername, tuple) else "?"
        out = TcpOutbound(writer.transport)
        try:
            self.access.open_ip(peer)
        except LimitExceeded as exc:
            self.metrics.errors.labels(exc.kind).inc()
            out.write(refusal_frame(exc))
            writer.close()  # refused at accept: nothing of it was read, nothing to drain
            return
        conn = self.open_connection(out, transport_name="tcp", peer=peer)
        try:
            while not conn.closing:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                await conn.feed(data)
        except ConnectionError:
            pass
        finally:
            conn.close("peer_closed")
        await _drain(reader, writer)


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and drop whatever the client still sends until it closes its side (the close
    grace aborts one that never does): closing a socket with unread bytes would reset it,
    and the client would lose the ERROR it has not read yet."""
    try:
        while await reader.read(READ_CHUNK):
            pass
    except ConnectionError:
        pass
    finally:
        writer.close()
