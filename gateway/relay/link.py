"""The node's two AMQP connections and the loop that keeps them up.

The *wire* (:class:`~gateway.relay.wire.AmqpWire`, lean, frames handled in
``data_received``) carries the two hot streams: publishes with their confirms, and the
node's fan-out queue. The other connection (aiormq) does everything else: per-subscription
consumers with acks and prefetch, declares, passive checks. A client-ack consumer that
waits on a slow client therefore never sits between a SEND and its confirm. Both are
opened together, and
losing either counts as losing the broker: the other one is closed too, ``on_down(reason)``
runs once, and the loop reconnects with jittered exponential backoff
(``reconnect_min_delay`` doubling up to ``reconnect_max_delay``). After each successful
connect ``on_up(publish, consume)`` restores what the relay needs; if it fails, the attempt
counts as failed and the loop tries again.

Clusters: ``settings.amqp_urls`` may name several nodes of one RabbitMQ cluster. An attempt
tries them in turn, starting with the one the last attempt reached, and takes the first that
answers (both connections always go to the same node); only when every node failed does the
loop wait out its backoff. A lost connection moves the next attempt on to the following node,
so a node that died is tried last. Everything the relay restores in ``on_up`` (exchanges, the
node's exclusive fan-out queue, consumers) is declared again on whichever node it reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import aiormq
from aiormq.abc import AbstractConnection
from yarl import URL

from .errors import BrokerUnavailableError, describe_amqp_error
from .settings import RelaySettings
from .wire import AmqpWire, ReadHooks

__all__ = ["BrokerLink"]

log = logging.getLogger("stompgate.relay")

UpHook = Callable[[AmqpWire, AbstractConnection], Awaitable[None]]
DownHook = Callable[[str], None]


class BrokerLink:
    """Connect, watch, reconnect. ``ready`` is True only while both connections are up and
    ``on_up`` has finished."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        on_up: UpHook,
        on_down: DownHook,
        read_hooks: ReadHooks | None = None,
    ) -> None:
        """``read_hooks`` go to every wire connection (see :class:`AmqpWire`)."""
        self._settings = settings
        self._on_up = on_up
        self._on_down = on_down
        self._read_hooks = read_hooks
        self._publish: AmqpWire | None = None
        self._consume: AbstractConnection | None = None
        self._ready = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._first_attempt = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._urls = settings.amqp_urls
        self._next_url = 0  # index of the URL the next attempt starts with
        self.url: str | None = None
        """The URL of the node both connections are open to (None while there are none)."""
        self.generation = 0
        self.last_error: str | None = None

    # -- public ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def connected(self) -> bool:
        """Both connections exist and are open (also true during ``on_up``)."""
        return (
            self._publish is not None
            and self._consume is not None
            and not self._publish.is_closed
            and not self._consume.is_closed
        )

    @property
    def shown_url(self) -> str | None:
        """:attr:`url` without its password (None while disconnected)."""
        return None if self.url is None else _shown(self.url)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def consume_connection(self) -> AbstractConnection:
        """The consuming connection (also used for declares and binds)."""
        if self._consume is None or self._consume.is_closed:
            raise BrokerUnavailableError(self.unavailable_text())
        return self._consume

    def unavailable_text(self) -> str:
        if self.last_error:
            return f"broker unavailable ({self.last_error})"
        return "broker unavailable"

    async def start(self) -> None:
        """Start the loop and wait for the first connection attempt (successful or not)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stompgate-relay-link")
        await self._first_attempt.wait()

    async def wait_ready(self, seconds: float | None = None) -> bool:
        """Wait until connected (at most ``seconds``); return ``ready``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._ready_event.wait()
        return self._ready

    async def close(self) -> None:
        self._closing = True
        self._ready = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_connections()
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self._settings
        delay = settings.reconnect_min_delay
        while not self._closing:
            try:
                await self._connect()
                await self._on_up(self._publish_or_raise(), self._consume_or_raise())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = describe_amqp_error(exc)
                await self._close_connections()
                self._next_url = (self._next_url + 1) % len(self._urls)
                self._first_attempt.set()
                wait = delay * (0.5 + random.random() / 2)
                log.warning(
                    "cannot connect to RabbitMQ (%s); retrying in %.1f s", self.last_error, wait
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, settings.reconnect_max_delay)
                continue
            delay = settings.reconnect_min_delay
            self.last_error = None
            self._ready = True
            self._ready_event.set()
            self._first_attempt.set()
            log.info(
                "connected to RabbitMQ at %s (generation %d)", _shown(self.url), self.generation
            )
            reason = await self._wait_for_loss()
            self._ready = False
            self._ready_event.clear()
            self.generation += 1
            self.last_error = reason
            # Closed in the background: closing a connection the broker reset can take
            # aiormq its whole timeout (5 s), and the node must hear of the loss and
            # reconnect now, not after it.
            closer = asyncio.create_task(_close_pair(*self._detach()), name="stompgate-link-close")
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)
            self._next_url = (self._next_url + 1) % len(self._urls)
            if self.closing:
                return
            log.warning("lost RabbitMQ: %s; reconnecting", reason)
            try:
                self._on_down(reason)
            except Exception:
                log.exception("on_down hook failed")

    def _publish_or_raise(self) -> AmqpWire:
        if self._publish is None:
            raise BrokerUnavailableError("wire connection missing")
        return self._publish

    def _consume_or_raise(self) -> AbstractConnection:
        if self._consume is None:
            raise BrokerUnavailableError("consume connection missing")
        return self._consume

    async def _connect(self) -> None:
        """Connect to the first node that answers, from ``_next_url`` on; raise the last
        node's error when none does."""
        count = len(self._urls)
        for step in range(count):
            index = (self._next_url + step) % count
            url = self._urls[index]
            try:
                await self._connect_to(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._close_connections()
                if step == count - 1:
                    raise
                log.warning(
                    "cannot connect to RabbitMQ at %s (%s); trying the next node",
                    _shown(url),
                    describe_amqp_error(exc),
                )
                continue
            self._next_url = index
            self.url = url
            return

    async def _connect_to(self, url: str) -> None:
        settings = self._settings
        async with asyncio.timeout(settings.connect_timeout):
            self._publish = await AmqpWire.connect(
                url,
                name=f"stompgate {settings.node_id} wire",
                connect_timeout=settings.connect_timeout,
                read_hooks=self._read_hooks,
            )
            self._consume = await aiormq.connect(
                url,
                client_properties={"connection_name": f"stompgate {settings.node_id} consume"},
            )

    async def _wait_for_loss(self) -> str:
        publish, consume = self._publish, self._consume
        assert publish is not None
        assert consume is not None
        watchers = [publish.closing, consume.closing]
        try:
            done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                if not watcher.done():
                    watcher.cancel()
        which = "wire" if watchers[0] in done else "consume"
        future = next(iter(done))
        exc = None if future.cancelled() else future.exception()
        text = "connection closed" if exc is None else describe_amqp_error(exc)
        return f"{which} connection lost: {text}"

    def _detach(self) -> tuple[AmqpWire | None, AbstractConnection | None]:
        """Forget both connections (to be closed by the caller)."""
        publish, consume = self._publish, self._consume
        self._publish = self._consume = None
        self.url = None
        return publish, consume

    async def _close_connections(self) -> None:
        await _close_pair(*self._detach())


async def _close_pair(publish: AmqpWire | None, consume: AbstractConnection | None) -> None:
    if publish is not None and not publish.is_closed:
        with contextlib.suppress(Exception):
            await publish.close(grace=5)
    if consume is not None and not consume.is_closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consume.close(), timeout=5)


def _shown(url: str | None) -> str:
    """``url`` for a log line: host, port and vhost, never the password."""
    if url is None:
        return "-"
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)
