"""Limits on the HTTP port before a request reaches a handler: the per-IP connection count
and a deadline for each request's headers.

aiohttp hands a socket to a handler only once a whole request head has arrived, so a socket
that never sends one (silent, or trickling a byte at a time) is seen by no handler. The guard
wraps aiohttp's protocol factory, so it sees every accepted socket:

* at accept, the socket counts against ``max_connections_per_ip`` (the same count as STOMP
  sockets); past it, it is not counted, never reaches aiohttp, and has
  ``REFUSED_REQUEST_TIMEOUT`` to send its request head, which
  :mod:`gateway.transport.http_refusal` answers: a WebSocket upgrade gets the ERROR frame
  ``Too many connections`` (upgraded only to say so), any other request ``429`` with the
  limit's text. The socket is closed when the client answers (its close frame, or EOF), or
  ``REFUSED_REQUEST_TIMEOUT`` after the answer;
* from accept, and again after each response, the client has ``http_header_timeout``
  seconds to send the next request's headers; the guard's middleware stops the clock when a
  request reaches the application. Past the deadline: ``HTTP/1.1 408`` and close;
* the WebSocket endpoint takes over a socket it upgrades (:meth:`HttpGuard.hand_over`):
  from then on the socket is a STOMP connection, counted and timed as one (the CONNECT
  timeout runs from the upgrade);
* with a lean WebSocket endpoint (:meth:`HttpGuard.serve_websockets`, ``--ws-impl lean``),
  an admitted socket's first request head is read here before aiohttp sees anything: an
  upgrade the endpoint :meth:`~WebSocketUpgrader.wants` is handed to it with the socket (and
  its count); any other request, or a head over ``MAX_HEAD`` bytes, goes to aiohttp as if it
  had read it itself (its protocol is made then and given the bytes read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from aiohttp import web

from gateway.access import Access, LimitExceeded
from gateway.metrics import Metrics
from gateway.transport.http_refusal import (
    MAX_HEAD,
    RequestHead,
    answer,
    http_response,
    parse_head,
)

__all__ = ["HttpGuard", "WebSocketUpgrader"]

log = logging.getLogger("stompgate.http")

#: A socket past the per-IP limit has this long (or the header deadline, if shorter) to send
#: its request, uncounted: a WebSocket upgrade is answered with the ERROR that says why,
#: anything else with 429; a silent one is closed. Once answered, it has this long again to
#: close (a WebSocket client answers the close frame).
REFUSED_REQUEST_TIMEOUT = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebSocketUpgrader(Protocol):
    """What serves WebSocket upgrades outside aiohttp (:class:`gateway.transport.lean_ws.
    LeanEndpoint`)."""

    def wants(self, head: RequestHead) -> bool: ...

    def upgrade(
        self, head: RequestHead, transport: asyncio.Transport, ip: str, rest: bytes
    ) -> None: ...


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one socket, behind the guard's count and deadline."""

    __slots__ = (
        "_answered",
        "_guard",
        "_head",
        "_inner",
        "_make",
        "_timer",
        "handed_over",
        "ip",
        "refusal",
        "transport",
    )

    def __init__(self, guard: HttpGuard, make: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make = make
        self._inner: asyncio.Protocol | None = None  # aiohttp's, for an admitted socket
        self._head = b""  # a refused socket's request head, so far
        self._answered = False
        self._timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.ip: str | None = None  # counted against the per-IP limit while set
        self.handed_over = False
        #: Past the per-IP limit at accept: the socket may still say what it wanted (a
        #: WebSocket is told why in an ERROR frame, as a browser shows no HTTP status).
        self.refusal: LimitExceeded | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else "?"
        guard = self._guard
        try:
            guard.access.open_ip(ip)
            self.ip = ip
        except LimitExceeded as exc:
            guard.metrics.errors.labels(exc.kind).inc()
            self.refusal = exc  # not counted; answered here, aiohttp never sees it
        self.transport = transport
        self.arm()
        if self.refusal is None:
            guard.live[transport] = self
            if guard.websockets is None:
                self._start_inner(b"")
            # else: its first request head decides who serves it (_admitted_data)

    def _start_inner(self, data: bytes) -> None:
        """aiohttp's protocol serves the socket from now on, starting with ``data``."""
        assert self.transport is not None
        self._inner = inner = self._make()
        inner.connection_made(self.transport)
        if data:
            inner.data_received(data)

    def arm(self) -> None:
        """Start the clock for the next request's headers."""
        timeout = self._guard.timeout
        if self.refusal is not None:
            timeout = min(timeout or REFUSED_REQUEST_TIMEOUT, REFUSED_REQUEST_TIMEOUT)
        if timeout and not self.handed_over and self.transport is not None:
            self.disarm()
            self._timer = asyncio.get_running_loop().call_later(timeout, self._expire, timeout)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, timeout: float) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._answered:
            transport.close()  # the refused client did not close in time
            return
        guard = self._guard
        guard.metrics.errors.labels("http_header_timeout").inc()
        log.info("HTTP request headers not received in time", extra={"peer": self.ip})
        transport.write(
            http_response(
                "408 Request Timeout",
                f"http header timeout: no complete request within {timeout:g} s",
            )
        )
        transport.close()

    def close_undecided(self) -> None:
        if self._inner is None and self.transport is not None:
            self.transport.close()

    def hand_over(self) -> None:
        """The socket becomes a STOMP connection: no deadline, and no count of ours."""
        self.handed_over = True
        self.disarm()
        self._release()

    def _release(self) -> None:
        if self.ip is not None:
            self._guard.access.close_ip(self.ip)
            self.ip = None

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        elif self.refusal is None:
            self._admitted_data(data)
        elif self._answered:
            if self.transport is not None:  # the WebSocket client's close frame
                self.transport.close()
        else:
            self._refused_data(data)

    def _admitted_data(self, data: bytes) -> None:
        """Keep an admitted socket's first bytes until its request head is whole: a WebSocket
        upgrade the lean endpoint wants goes to it, anything else to aiohttp."""
        buffered = self._head = self._head + data
        end = buffered.find(b"\r\n\r\n")
        if end < 0 and len(buffered) < MAX_HEAD:
            return
        self._head = b""
        head = parse_head(buffered[: end + 4]) if end >= 0 else None
        websockets = self._guard.websockets
        if head is None or websockets is None or not websockets.wants(head):
            self._start_inner(buffered)
            return
        transport, ip = self.transport, self.ip
        assert transport is not None
        assert ip is not None
        self.handed_over = True  # the endpoint takes the socket and its count over
        self.disarm()
        self.ip = None
        self._guard.live.pop(transport, None)
        self.transport = None  # connection_lost, if it still comes here, is a no-op
        websockets.upgrade(head, transport, ip, buffered[end + 4 :])

    def _refused_data(self, data: bytes) -> None:
        """Keep a refused socket's bytes until its request head is whole, then answer it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0 and len(self._head) < MAX_HEAD:
            return
        transport, refusal = self.transport, self.refusal
        assert transport is not None
        assert refusal is not None
        head = parse_head(self._head[: end + 4]) if end >= 0 else None
        self._head = b""
        guard = self._guard
        reply, upgraded = answer(head, refusal, guard.ws_path, guard.access.check_origin)
        transport.write(reply)
        if not upgraded:
            transport.close()
            return
        self._answered = True  # now wait (a little) for the client's close frame
        self.disarm()
        self._timer = asyncio.get_running_loop().call_later(
            REFUSED_REQUEST_TIMEOUT, self._expire, REFUSED_REQUEST_TIMEOUT
        )

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return False  # a refused socket: close

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        transport = self.transport
        if transport is None:
            return
        self.disarm()
        self._release()
        self._guard.live.pop(transport, None)
        if self._inner is not None:
            self._inner.connection_lost(exc)


class HttpGuard:
    """The per-IP count and the header deadline of the HTTP port (``timeout`` 0: none)."""

    def __init__(self, access: Access, metrics: Metrics, timeout: float, ws_path: str) -> None:
        self.access = access
        self.ws_path = ws_path
        self.metrics = metrics
        self.timeout = timeout
        self.live: dict[asyncio.BaseTransport, _Guarded] = {}
        #: Serves WebSocket upgrades outside aiohttp (None: aiohttp serves them).
        self.websockets: WebSocketUpgrader | None = None

    def serve_websockets(self, upgrader: WebSocketUpgrader) -> None:
        """From now on, sockets whose first request is an upgrade ``upgrader`` wants go to it."""
        self.websockets = upgrader

    def close_undecided(self) -> None:
        """Close the admitted sockets that have not sent a whole request head yet (aiohttp
        does not know them, so its cleanup would not)."""
        for guarded in list(self.live.values()):
            guarded.close_undecided()

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """aiohttp's protocol factory (``AppRunner.server``), guarded."""
        return lambda: _Guarded(self, make)

    def hand_over(self, transport: asyncio.BaseTransport | None) -> None:
        """The WebSocket endpoint took this socket (it counts it from now on)."""
        guarded = None if transport is None else self.live.get(transport)
        if guarded is not None:
            guarded.hand_over()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A request arrived whole: stop the clock until its response is out."""
        transport = request.transport
        guarded = None if transport is None else self.live.get(transport)
        if guarded is not None:
            guarded.disarm()
        try:
            return await handler(request)
        finally:
            if guarded is not None:
                guarded.arm()
