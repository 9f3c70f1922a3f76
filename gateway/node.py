"""One gateway node: its sessions, its relay, its timers, its drain.

The node owns what is shared by all connections of one process:

* the relay (few AMQP connections, the edge fan-out queue);
* one flush per loop turn for every connection that got deliveries (several frames per write);
* one ticker for heart-beats, heart-beat timeouts and CONNECT timeouts, instead of a timer
  per connection;
* the broker-loss policy: when the relay loses RabbitMQ, every session is closed with an
  ERROR that says so (clients reconnect, re-subscribe and catch up; durable queues kept their
  messages and unacked ones are redelivered), and ``/readyz`` says "not ready" until the relay
  is back, so a load balancer sends new clients elsewhere;
* graceful drain on SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable

from gateway.access import Access
from gateway.chat_bridge import ChatBridge
from gateway.connection import Connection
from gateway.metrics import Metrics
from gateway.relay import Relay
from gateway.settings import Settings
from gateway.stomp import Limits, SessionConfig, SessionState

log = logging.getLogger("stompgate.node")

TICK_SECONDS = 0.25


class Node:
    def __init__(
        self,
        settings: Settings,
        relay_factory: Callable[[Callable[[str], None]], Relay],
        access: Access,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.access = access
        self.chat: ChatBridge | None = None
        self.relay = relay_factory(self._broker_lost)
        self.metrics.room_order = lambda: self.relay.room_order
        self.session_config = SessionConfig(
            limits=Limits(
                max_frame_size=settings.max_frame_size,
                max_headers=settings.max_headers,
                max_header_line=settings.max_header_line,
                max_subscriptions=settings.max_subscriptions,
                max_transactions=settings.max_transactions,
                max_transaction_frames=settings.max_transaction_frames,
            ),
            server_name="stompgate/0.1",
            heartbeat=(settings.heartbeat_send_ms, settings.heartbeat_receive_ms),
        )
        self.connections: set[Connection] = set()
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._ids = itertools.count(1)
        self._id_prefix = f"{settings.node_id}-{os.urandom(3).hex()}"
        self._ticker: asyncio.Task[None] | None = None
        self._release_tasks: set[asyncio.Task[None]] = set()
        self.draining = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.relay.start()
        self._ticker = asyncio.create_task(self._tick_forever(), name="stompgate-ticker")

    async def stop(self, reason: str = "server shutting down") -> None:
        """Drain: refuse new clients, tell current ones why, wait for confirms, close."""
        self.draining = True
        for conn in list(self.connections):
            conn.fail(f"{reason}; reconnect to another node", reason="shutdown")
        if self._release_tasks:
            await asyncio.wait(self._release_tasks, timeout=self.settings.drain_timeout)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.relay.close()

    @property
    def ready(self) -> bool:
        return self.relay.ready and not self.draining

    # -- sessions ----------------------------------------------------------------------------

    def new_session_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def opened(self, conn: Connection) -> None:
        """Count a new socket; the caller has already passed ``access.open_ip``."""
        self.connections.add(conn)
        self.metrics.connections_total.labels(conn.transport_name).inc()
        self.metrics.sessions.labels(conn.transport_name).inc()

    def forget(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.metrics.sessions.labels(conn.transport_name).dec()
            self.access.close_ip(conn.peer)
            task = asyncio.get_running_loop().create_task(conn.release())
            self._release_tasks.add(task)
            task.add_done_callback(self._release_done)

    def _release_done(self, task: asyncio.Task[None]) -> None:
        self._release_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("releasing a session failed", exc_info=task.exception())

    # -- output batching ---------------------------------------------------------------------

    def mark_dirty(self, conn: Connection) -> None:
        """``conn`` has queued output; write it once at the end of this loop turn."""
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.dirty = False
            if not conn.closing:
                conn.flush()

    # -- timers ------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        refresh_every = self.access.counter.lease_ttl / 3
        next_refresh = time.monotonic() + refresh_every
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            try:
                self.tick(now, time.time())
            except Exception:  # a bug in one tick must not stop heart-beats for everyone
                log.exception("ticker failed")
            if now >= next_refresh:
                next_refresh = now + refresh_every
                await self.access.refresh()

    def tick(self, now: float, wall: float) -> None:
        """Heart-beats out, and the timeouts: CONNECT, heart-beat, idle, token expiry."""
        grace = self.settings.heartbeat_grace
        connect_timeout = self.settings.connect_timeout
        idle_timeout = self.access.limits.idle_timeout
        for conn in list(self.connections):
            session = conn.session
            if session.state is not SessionState.CONNECTED:
                if connect_timeout and now - conn.created > connect_timeout:
                    conn.fail(
                        f"CONNECT timeout: no CONNECT frame within {connect_timeout:g} s",
                        reason="connect_timeout",
                    )
                continue
            if conn.deadline is not None and wall >= conn.deadline:
                conn.fail(
                    "token expired",
                    detail="the session's token expired; reconnect with a fresh token",
                    reason="token_expired",
                )
                continue
            if idle_timeout and now - conn.last_read > idle_timeout:
                conn.fail(
                    f"idle timeout: nothing received for {idle_timeout:g} s", reason="idle_timeout"
                )
                continue
            plan = session.heartbeat
            if plan is None:
                continue
            if plan.expect_every_ms and now - conn.last_read > plan.expect_every_ms * grace / 1000:
                silent = now - conn.last_read
                conn.fail(
                    f"heart-beat timeout: nothing received for {silent:.1f} s "
                    f"(expected every {plan.expect_every_ms} ms)",
                    reason="heartbeat_timeout",
                )
                continue
            if plan.send_every_ms and now - conn.last_write >= plan.send_every_ms / 1000 * 0.9:
                conn.heartbeat()

    # -- broker loss -------------------------------------------------------------------------

    def _broker_lost(self, reason: str) -> None:
        log.warning(
            "broker connection lost: %s; closing %d sessions", reason, len(self.connections)
        )
        for conn in list(self.connections):
            conn.fail(
                f"broker connection lost ({reason}); reconnect and resubscribe",
                reason="broker_lost",
            )
