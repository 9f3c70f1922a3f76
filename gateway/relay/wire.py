"""A lean AMQP 0-9-1 connection for the node's hot streams: confirmed publishes and the
fan-out queue's deliveries.

Theory of operation. Every SEND costs the node one publish and one confirm, and every
message a node's sessions subscribe to costs one delivery. With aiormq each of those frames
passes a reader task, a per-channel queue and a reader task per channel, and each delivery
gets a task of its own: three or four loop turns and a few dozen Python calls per frame,
which on this kind of machine was a third of the gateway's CPU per delivered message. Here
the connection is an :class:`asyncio.Protocol`: ``data_received`` cuts the bytes into frames
and handles each one on the spot. A confirm resolves its publish's future; a delivery calls
the consumer's callback (synchronously: the fan-out renders and queues, it never awaits).
No task, queue or extra loop turn per frame.

Scope: what the relay's hot side needs, and nothing else. PLAIN login, heart-beats, TLS
(``amqps://``, with aiormq's ``cafile``/``capath``/``certfile``/``keyfile``/
``no_verify_ssl`` query options), channels, ``confirm.select``, ``queue.declare``/``bind``/
``unbind``, ``basic.consume`` (no-ack), ``basic.publish``, and the frames the broker sends
back: ``basic.ack``/``nack`` (confirms), ``basic.return``, ``basic.deliver``,
``basic.cancel``, ``channel.close``, ``connection.close`` and ``connection.blocked``. Per
subscription consumers, declares and the rest stay on aiormq (see :mod:`gateway.relay.link`).

Failure model, the same as aiormq's as far as the relay is concerned:

* the broker closes a channel (say, publishing to an exchange that was just deleted): that
  channel's pending publishes fail with :class:`ChannelClosedError` and the channel is
  unusable (callers open another);
* the connection goes (broker closed it, socket error, missed heart-beats): every pending
  publish and RPC fails with :class:`ConnectionLostError`, and :attr:`AmqpWire.closing` is done
  with that exception;
* a confirm that does not come within the publish's timeout fails with
  :class:`ConfirmTimeoutError` (one sweep per second for the whole connection, no timer per
  publish);
* a publish whose properties would not fit in one frame (the broker's FRAME_ERROR closes
  the connection) raises :class:`ContentHeaderTooLargeError` and writes nothing.

A ``basic.return`` carries no delivery tag, so ``mandatory`` publishes go through channels
that have one publish in flight at a time (:meth:`WireChannel.publish` enforces it): the
return then belongs to that publish, whose confirm follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Final, TypeVar, cast

from pamqp import commands as spec
from yarl import URL

from .wire_channel import (
    DELIVER,
    RETURN,
    ChannelClosedError,
    ConfirmTimeoutError,
    ConnectionLostError,
    Delivery,
    NackedError,
    PendingContent,
    ReturnedError,
    WireChannel,
    WireError,
)
from .wire_codec import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEAD,
    HEARTBEAT,
    PROTOCOL_HEADER,
    ContentHeaderTooLargeError,
    MethodFrame,
    decode_method,
    encode_method,
    shortstr,
)

__all__ = [
    "AmqpWire",
    "ChannelClosedError",
    "ConfirmTimeoutError",
    "ConnectionLostError",
    "ContentHeaderTooLargeError",
    "Delivery",
    "NackedError",
    "ReadHooks",
    "ReturnedError",
    "WireChannel",
    "WireError",
]

log = logging.getLogger("stompgate.relay")

_M = TypeVar("_M", bound=MethodFrame)
#: (begin, end): called around the handling of each read (see :class:`AmqpWire`).
ReadHooks = tuple[Callable[[], None], Callable[[], None]]

DEFAULT_HEARTBEAT: Final = 60
DEFAULT_FRAME_MAX: Final = 131072
CHANNEL_MAX: Final = 2047
SWEEP_SECONDS: Final = 1.0
_IDS: Final = struct.Struct(">HH")
_ACK: Final = struct.Struct(">QB")
_DELIVER_TAIL: Final = struct.Struct(">QB")
_RETURN_CODE: Final = struct.Struct(">H")
_BASIC: Final = 60
_ACK_ID: Final = 80
_NACK: Final = 120


# -- the connection -------------------------------------------------------------------------


class AmqpWire(asyncio.Protocol):
    """One AMQP connection; frames handled in ``data_received``. Use :meth:`connect`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, read_hooks: ReadHooks | None = None
    ) -> None:
        """``read_hooks`` (begin, end) are called before and after the frames of each read
        are handled (the gateway holds its socket writes until the end, then writes each
        session's frames at once)."""
        self.loop = loop
        self.frame_max = DEFAULT_FRAME_MAX
        self.heartbeat = 0
        self._closed: asyncio.Future[None] = loop.create_future()
        self._closed.add_done_callback(_retrieve)
        self.blocked = False
        self._read_hooks = read_hooks
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._channels: dict[int, WireChannel] = {}
        self._control: asyncio.Future[MethodFrame] | None = None
        self._close_ok: asyncio.Future[None] | None = None
        self._socket_closed: asyncio.Future[None] = loop.create_future()
        self._made = False
        self._reads = 0
        self._timer: asyncio.TimerHandle | None = None
        self._ticks = 0
        self._reads_seen = 0
        self._silent_ticks = 0

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str,
        connect_timeout: float = 10.0,
        read_hooks: ReadHooks | None = None,
    ) -> AmqpWire:
        """Connect, log in and open the virtual host of ``url`` (``amqp://`` or ``amqps://``)."""
        parsed = URL(url)
        if parsed.scheme not in ("amqp", "amqps"):
            raise ValueError(f"not an AMQP URL: {parsed.scheme}://...")
        secure = parsed.scheme == "amqps"
        host = parsed.host or "localhost"
        port = parsed.port or (5671 if secure else 5672)
        query = parsed.query
        heartbeat = int(query.get("heartbeat", str(DEFAULT_HEARTBEAT)))
        context = _ssl_context(query) if secure else None
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _, wire = await loop.create_connection(
                lambda: cls(loop, read_hooks=read_hooks),
                host,
                port,
                ssl=context,
                server_hostname=host if secure else None,
            )
            try:
                await wire.handshake(
                    user=urllib.parse.unquote(parsed.raw_user or "guest"),
                    password=urllib.parse.unquote(parsed.raw_password or "guest"),
                    vhost=_vhost(parsed),
                    heartbeat=heartbeat,
                    name=query.get("name", name),
                )
            except BaseException:
                wire.abort("handshake failed")
                with contextlib.suppress(BaseException):
                    await wire.wait_closed(1.0)
                raise
        return wire

    async def handshake(
        self, *, user: str, password: str, vhost: str, heartbeat: int, name: str
    ) -> None:
        """Log in and open ``vhost`` (:meth:`connect` does it once the socket is up)."""
        self.write(PROTOCOL_HEADER)
        start = await self._expect(spec.Connection.Start)
        mechanisms = (start.mechanisms or "").split()
        if "PLAIN" not in mechanisms:
            raise ConnectionLostError(f"broker offers no PLAIN login (only {start.mechanisms})")
        self.write(
            encode_method(
                0,
                spec.Connection.StartOk(
                    client_properties={
                        "product": "stompgate",
                        "connection_name": name,
                        "capabilities": {
                            "publisher_confirms": True,
                            "basic.nack": True,
                            "consumer_cancel_notify": True,
                            "connection.blocked": True,
                            "authentication_failure_close": True,
                        },
                    },
                    mechanism="PLAIN",
                    response=f"\x00{user}\x00{password}",
                    locale="en_US",
                ),
            )
        )
        tune = await self._expect(spec.Connection.Tune)
        self.frame_max = min(tune.frame_max or DEFAULT_FRAME_MAX, DEFAULT_FRAME_MAX)
        server_beat = tune.heartbeat or 0
        # RabbitMQ's rule: the smaller of the two, unless one is 0 (then the greater: both
        # peers must ask for 0 to turn heart-beats off).
        if heartbeat and server_beat:
            self.heartbeat = min(heartbeat, server_beat)
        else:
            self.heartbeat = max(heartbeat, server_beat)
        channel_max = min(tune.channel_max or CHANNEL_MAX, CHANNEL_MAX)
        self.write(
            encode_method(
                0,
                spec.Connection.TuneOk(
                    channel_max=channel_max, frame_max=self.frame_max, heartbeat=self.heartbeat
                ),
            )
        )
        self.write(encode_method(0, spec.Connection.Open(virtual_host=vhost)))
        await self._expect(spec.Connection.OpenOk)
        self._schedule()

    async def _expect(self, kind: type[_M]) -> _M:
        waiter = self.loop.create_future()
        self._control = waiter
        try:
            method = await waiter
        finally:
            self._control = None
        if not isinstance(method, kind):
            raise ConnectionLostError(f"AMQP handshake: expected {kind.name}, got {method.name}")
        return method

    # -- channels ---------------------------------------------------------------------------

    async def channel(self, *, confirms: bool = False, critical: bool = False) -> WireChannel:
        """Open a channel (in confirm mode if ``confirms``; ``critical``: if the broker
        closes it, the whole connection is dropped)."""
        if self._closed.done():
            raise self._lost_reason()
        number = next((n for n in range(1, CHANNEL_MAX + 1) if n not in self._channels), 0)
        if not number:
            raise WireError("no free AMQP channel number")
        channel = WireChannel(self, number, critical=critical)
        self._channels[number] = channel
        try:
            await channel.rpc(spec.Channel.Open())
            if confirms:
                await channel.confirm_select()
        except BaseException:
            channel.mark_closed(ChannelClosedError(0, "channel could not be opened"))
            raise
        return channel

    def forget_channel(self, channel: WireChannel) -> None:
        if self._channels.get(channel.number) is channel:
            del self._channels[channel.number]

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._closed.done():
            raise self._lost_reason()
        transport.write(data)

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def closing(self) -> asyncio.Future[None]:
        """A new future, done (with the reason as its exception, if any) once the connection
        is gone. Each caller gets its own, so a watcher may cancel it safely."""
        if self._closed.done():
            return self._closed
        watcher: asyncio.Future[None] = self.loop.create_future()
        watcher.add_done_callback(_retrieve)

        def relay(done: asyncio.Future[None]) -> None:
            if watcher.done():
                return
            exc = done.exception()
            if exc is None:
                watcher.set_result(None)
            else:
                watcher.set_exception(exc)

        self._closed.add_done_callback(relay)
        watcher.add_done_callback(lambda _: self._closed.remove_done_callback(relay))
        return watcher

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._made = True

    def data_received(self, data: bytes) -> None:
        hooks = self._read_hooks
        if hooks is None:
            self._frames(data)
            return
        hooks[0]()
        try:
            self._frames(data)
        finally:
            hooks[1]()

    def _frames(self, data: bytes) -> None:
        self._reads += 1
        buffer = self._buffer
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        end = len(data)
        pos = 0
        frame_max = self.frame_max
        channels = self._channels
        try:
            while end - pos >= 8:
                kind, number, size = HEAD.unpack_from(data, pos)
                stop = pos + 7 + size
                if stop >= end:
                    if size > frame_max:
                        raise ConnectionLostError(f"AMQP frame of {size} bytes > frame_max")
                    break
                if data[stop] != FRAME_END:
                    raise ConnectionLostError("AMQP framing error (no frame-end octet)")
                payload = data[pos + 7 : stop]
                pos = stop + 1
                if kind == FRAME_METHOD:
                    self._method(number, payload)
                elif kind == FRAME_HEADER:
                    channel = channels.get(number)
                    if channel is not None:
                        channel.content_header(payload)
                elif kind == FRAME_BODY:
                    channel = channels.get(number)
                    if channel is not None:
                        channel.content_body(payload)
                elif kind != FRAME_HEARTBEAT:
                    raise ConnectionLostError(f"unknown AMQP frame type {kind}")
        except ConnectionLostError as exc:
            self._lose(exc)
            return
        except Exception as exc:
            log.exception("AMQP frame handling failed; dropping the connection")
            self._lose(ConnectionLostError(f"frame handling failed: {exc}"))
            return
        if pos < end:
            buffer += data[pos:] if pos else data

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._socket_closed.done():
            self._socket_closed.set_result(None)
        text = "connection closed" if exc is None else (str(exc) or type(exc).__name__)
        self._lose(ConnectionLostError(text))

    # -- frame handlers ---------------------------------------------------------------------

    def _method(self, number: int, payload: bytes) -> None:
        class_id, method_id = _IDS.unpack_from(payload)
        if class_id == _BASIC and number:
            channel = self._channels.get(number)
            if channel is None:
                return
            if method_id in (_ACK_ID, _NACK):
                tag, bits = _ACK.unpack_from(payload, 4)
                channel.handle_confirm(tag, bool(bits & 1), method_id == _ACK_ID)
                return
            if method_id == DELIVER:
                consumer_tag, at = shortstr(payload, 4)
                delivery_tag, redelivered = _DELIVER_TAIL.unpack_from(payload, at)
                exchange, at = shortstr(payload, at + 9)
                routing_key, _ = shortstr(payload, at)
                channel.begin_content(
                    PendingContent(
                        DELIVER,
                        consumer_tag,
                        delivery_tag,
                        bool(redelivered & 1),
                        exchange,
                        routing_key,
                    )
                )
                return
            if method_id == RETURN:
                (code,) = _RETURN_CODE.unpack_from(payload, 4)
                text, _ = shortstr(payload, 6)
                channel.begin_content(PendingContent(RETURN, "", code, False, text, ""))
                return
        method = decode_method(payload)
        if number == 0:
            self._control_method(method)
            return
        channel = self._channels.get(number)
        if channel is None:
            return
        if isinstance(method, spec.Channel.Close):
            with contextlib.suppress(WireError):
                self.write(encode_method(number, spec.Channel.CloseOk()))
            reason = ChannelClosedError(method.reply_code or 0, method.reply_text or "")
            channel.mark_closed(reason)
            if channel.critical:  # e.g. the fan-out consumer: the relay starts over
                self._lose(ConnectionLostError(f"broker closed a vital channel: {reason}"))
        elif isinstance(method, spec.Basic.Cancel):
            # The broker cancelled our consumer (its queue was deleted): the node queue is
            # gone, which the relay handles like a lost connection.
            self._lose(ConnectionLostError(f"broker cancelled consumer {method.consumer_tag}"))
        else:
            channel.handle_reply(method)

    def _control_method(self, method: MethodFrame) -> None:
        if isinstance(method, spec.Connection.Close):
            with contextlib.suppress(WireError):
                self.write(encode_method(0, spec.Connection.CloseOk()))
            self._lose(
                ConnectionLostError(method.reply_text or f"closed by broker ({method.reply_code})")
            )
        elif isinstance(method, spec.Connection.CloseOk):
            if self._close_ok is not None and not self._close_ok.done():
                self._close_ok.set_result(None)
        elif isinstance(method, spec.Connection.Blocked):
            self.blocked = True
            log.warning("RabbitMQ blocked publishing: %s", method.reason)
        elif isinstance(method, spec.Connection.Unblocked):
            self.blocked = False
            log.info("RabbitMQ unblocked publishing")
        elif self._control is not None and not self._control.done():
            self._control.set_result(method)

    # -- heart-beats and confirm timeouts ---------------------------------------------------

    def _schedule(self) -> None:
        self._timer = self.loop.call_later(SWEEP_SECONDS, self._tick)

    def _tick(self) -> None:
        if self._closed.done():
            return
        now = self.loop.time()
        for channel in list(self._channels.values()):
            channel.sweep(now)
        beat = self.heartbeat
        if beat:
            self._ticks += 1
            if self._reads != self._reads_seen:
                self._reads_seen = self._reads
                self._silent_ticks = 0
            else:
                self._silent_ticks += 1
                if self._silent_ticks * SWEEP_SECONDS > 2 * beat:
                    self._lose(
                        ConnectionLostError(f"missed heart-beats from the broker ({2 * beat} s)")
                    )
                    return
            if self._ticks * SWEEP_SECONDS >= beat / 2:
                self._ticks = 0
                with contextlib.suppress(WireError):
                    self.write(HEARTBEAT)
        self._schedule()

    # -- closing ----------------------------------------------------------------------------

    async def close(self, grace: float = 5.0) -> None:
        """Close politely (``connection.close``, wait for ``close-ok``), then the socket;
        returns once the socket is closed (at most about ``grace`` seconds)."""
        if not self._closed.done():
            self._close_ok = self.loop.create_future()
            with contextlib.suppress(TimeoutError, WireError):
                self.write(
                    encode_method(
                        0,
                        spec.Connection.Close(
                            reply_code=200, reply_text="bye", class_id=0, method_id=0
                        ),
                    )
                )
                async with asyncio.timeout(grace):
                    await self._close_ok
            self._finish(None)
        await self.wait_closed(grace)

    async def wait_closed(self, grace: float) -> None:
        """Wait (at most ``grace`` seconds) until the socket itself is closed."""
        if not self._made:
            return  # never connected
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.shield(self._socket_closed)

    def abort(self, reason: str) -> None:
        """Drop the connection at once (pending requests fail with ``reason``)."""
        self._lose(ConnectionLostError(reason))

    def _lose(self, reason: ConnectionLostError) -> None:
        self._finish(reason)

    def _finish(self, reason: ConnectionLostError | None) -> None:
        if self._closed.done():
            return
        if reason is None:
            self._closed.set_result(None)
        else:
            self._closed.set_exception(reason)
        if self._timer is not None:
            self._timer.cancel()
        failure = reason or ConnectionLostError("connection closed")
        if self._control is not None and not self._control.done():
            self._control.set_exception(failure)
        for channel in list(self._channels.values()):
            channel.mark_closed(failure)
        transport, self._transport = self._transport, None
        if transport is not None:
            if reason is None:
                transport.close()
            else:
                transport.abort()

    def _lost_reason(self) -> ConnectionLostError:
        if self._closed.done() and not self._closed.cancelled():
            exc = self._closed.exception()
            if isinstance(exc, ConnectionLostError):
                return exc
        return ConnectionLostError("connection closed")


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark the ``closing`` future's exception as seen (watchers read it when they like)."""
    if not future.cancelled():
        future.exception()


def _vhost(url: URL) -> str:
    """The virtual host of an AMQP URL, as aiormq reads it."""
    path = url.raw_path
    if path in ("", "/"):
        return "/"
    return urllib.parse.unquote(path[1:])


def _ssl_context(query: Mapping[str, str]) -> ssl.SSLContext:
    """A client TLS context from aiormq's URL options."""
    get = query.get
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=get("cafile"), capath=get("capath")
    )
    certfile = get("certfile")
    if certfile:
        context.load_cert_chain(certfile, get("keyfile"))
    if get("no_verify_ssl", "0") != "0":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
