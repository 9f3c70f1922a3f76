"""One gateway node: its client connections, their output, timers, drain and lifecycle.

The node holds what all connections of one process share; it implements the host a
:class:`~gateway.connection.Connection` is given (:class:`gateway.ports.ConnectionHost`) and
knows a connection only through :class:`Hosted`:

* one flush per broker read (or loop turn) for every connection that got deliveries
  (several frames per write): the relay calls :meth:`Node.begin_batch`/:meth:`Node.end_batch`
  around each read;
* one ticker for heart-beats and the CONNECT, heart-beat, idle, unfinished-frame and token
  timeouts, instead of a timer per connection; a timer wheel files each connection under
  the tick at which its earliest timer can fall due, so a tick looks only at those (see
  :meth:`Node.tick`);
* lifecycle events, announced to the :class:`~gateway.lifecycle.LifecycleListener` tuple it
  is given: opened, authenticated, closed (with a reason), and activity, in batches, once per
  tick;
* the broker-loss policy: when the relay loses RabbitMQ it calls :meth:`Node.broker_lost`,
  which closes every connection with an ERROR that says so (clients reconnect, re-subscribe
  and catch up; durable queues kept their messages and unacked ones are redelivered);
* graceful drain on SIGTERM (:meth:`Node.stop`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Sequence
from typing import Protocol

from gateway.access import Access
from gateway.errors import ClientError, ErrorMessage
from gateway.lifecycle import ConnectionInfo, LifecycleListener
from gateway.settings import Settings
from gateway.stomp import SessionState
from gateway.stomp.session import HeartBeatPlan

log = logging.getLogger("stompgate.node")

TICK_SECONDS = 0.25
#: A token deadline is in wall-clock time, the wheel in monotonic time: a session with one is
#: looked at again at least this often, so a step of the wall clock still ends it on time,
#: and filed this much early, so a slewing wall clock never makes it a tick late.
WALL_CLOCK_RECHECK = 1.0
WALL_CLOCK_SLACK = 0.01
#: Filed this much early, so a rounding error never puts a timer after the tick that is due.
_EARLY = 1e-6


class TimedSession(Protocol):
    """What the timers read of a connection's STOMP session."""

    @property
    def state(self) -> SessionState: ...

    @property
    def heartbeat(self) -> HeartBeatPlan | None: ...


class Hosted(ConnectionInfo, Protocol):
    """A connection as its node sees it (:class:`gateway.connection.Connection` is one)."""

    created: float  # monotonic
    last_read: float
    deadline: float | None  # wall clock: the token expires
    timer_slot: int | None  # the node's to set
    dirty: bool  # the node's to clear, after the flush
    active: bool  # the node's to clear, after announcing the activity

    @property
    def session(self) -> TimedSession: ...

    @property
    def last_write(self) -> float: ...  # monotonic

    @property
    def closing(self) -> bool: ...

    @property
    def frame_started(self) -> float | None: ...  # monotonic: an unfinished frame began

    def flush(self) -> None: ...

    def heartbeat(self) -> None: ...

    def fail(self, message: str, *, detail: str = "", reason: str = "error") -> None: ...

    def subscribed_to(self, destination: str) -> bool: ...

    def close(self, reason: str = "closed") -> None: ...

    async def release(self) -> None: ...


class Node:
    def __init__(
        self,
        settings: Settings,
        access: Access,
        *,
        listeners: Sequence[LifecycleListener] = (),
    ) -> None:
        self.settings = settings
        self.access = access
        self._listeners = tuple(listeners)
        self.connections: set[Hosted] = set()
        self._dirty: list[Hosted] = []
        self._flush_scheduled = False
        self._batching = False
        self._active: list[Hosted] = []  # read something since the last tick
        self._ids = itertools.count(1)
        self._id_prefix = f"{settings.node_id}-{os.urandom(3).hex()}"
        self._ticker: asyncio.Task[None] | None = None
        # The timer wheel: tick slot (monotonic time // TICK_SECONDS) -> the connections whose
        # earliest timer falls due in it. Connections with no timer running are in no slot.
        self._timers: dict[int, set[Hosted]] = {}
        self._timer_next = int(time.monotonic() // TICK_SECONDS)  # first slot a tick looks at
        self._release_tasks: set[asyncio.Task[None]] = set()
        self.draining = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="stompgate-ticker")

    async def stop(self, reason: str = "server shutting down") -> None:
        """Drain: refuse new clients, tell current ones why, wait until they are released."""
        self.draining = True
        for conn in list(self.connections):
            conn.fail(
                ErrorMessage.SERVER_SHUTTING_DOWN,
                detail=f"{reason}; reconnect to another node",
                reason="shutdown",
            )
        if self._release_tasks:
            await asyncio.wait(self._release_tasks, timeout=self.settings.drain_timeout)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)

    # -- connections -------------------------------------------------------------------------

    def new_session_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def opened(self, conn: Hosted) -> None:
        """Count a new socket; the caller has already passed ``access.open_ip``."""
        self.connections.add(conn)
        self.schedule(conn, time.monotonic(), time.time())
        for listener in self._listeners:
            listener.on_opened(conn)

    def authenticated(self, conn: Hosted) -> None:
        """Its CONNECT was accepted: heart-beats, idle timeout and token expiry from now."""
        self.schedule(conn, time.monotonic(), time.time())
        for listener in self._listeners:
            listener.on_authenticated(conn)

    def frame_started(self, conn: Hosted) -> None:
        """``conn`` began a frame it has not finished: file the frame's deadline too."""
        if self.settings.frame_timeout:
            self.schedule(conn, time.monotonic(), time.time())

    def mark_active(self, conn: Hosted) -> None:
        """``conn`` read something; announced with the next tick (``conn.active`` is set)."""
        self._active.append(conn)

    def forget(self, conn: Hosted, reason: str) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self._file(conn, None)
            self.access.close_ip(conn.peer)
            for listener in self._listeners:
                listener.on_closed(conn, reason)
            task = asyncio.get_running_loop().create_task(conn.release())
            self._release_tasks.add(task)
            task.add_done_callback(self._release_done)

    def _release_done(self, task: asyncio.Task[None]) -> None:
        self._release_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("releasing a connection failed", exc_info=task.exception())

    def _announce_activity(self) -> None:
        active, self._active = self._active, []
        for conn in active:
            conn.active = False
        seen = [conn for conn in active if conn.user is not None and not conn.closing]
        if seen:
            for listener in self._listeners:
                listener.on_activity(seen)

    # -- output batching ---------------------------------------------------------------------

    def mark_dirty(self, conn: Hosted) -> None:
        """``conn`` has queued output; write it once at the end of this loop turn (or of
        the broker read under way, see :meth:`begin_batch`)."""
        self._dirty.append(conn)
        if not self._flush_scheduled and not self._batching:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_dirty)

    def begin_batch(self) -> None:
        """The relay starts handling one read from the broker: hold flushes until
        :meth:`end_batch`, which writes everything that read brought in one go, without
        waiting for another loop turn."""
        self._batching = True

    def end_batch(self) -> None:
        self._batching = False
        if self._dirty and not self._flush_scheduled:
            self._flush_dirty()

    def _flush_dirty(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.dirty = False
            if not conn.closing:
                try:
                    conn.flush()
                except Exception:  # one broken session must not keep the others waiting
                    log.exception("flush failed", extra={"session": conn.session_id})
                    conn.close("internal_error")

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
        """Heart-beats out, and the timeouts: CONNECT, heart-beat, idle, token expiry; then
        the activity seen since the last tick is announced.

        Only connections filed in the wheel under a slot up to ``now``'s are looked at; each
        is checked exactly as if every connection were (:meth:`_check`), then filed again
        under its next due time. A timer is filed under the slot of the moment its condition
        can first hold, and the reads and writes that push it later (``last_read``,
        ``last_write``) only ever move forward, so no tick at which a timeout holds is
        missed; the current slot is looked at again next tick, as part of it is still ahead.
        """
        current = int(now // TICK_SECONDS)
        timers = self._timers
        first = self._timer_next
        if current - first < len(timers):  # the usual case: a slot or two since the last tick
            slots = [slot for slot in range(first, current + 1) if slot in timers]
        else:
            slots = sorted(slot for slot in timers if slot <= current)
        self._timer_next = max(first, current)
        for slot in slots:
            bucket = timers.pop(slot, None)
            if bucket is None:
                continue
            for conn in bucket:
                if conn.timer_slot != slot or conn.closing:
                    continue  # filed elsewhere or forgotten while this tick ran
                conn.timer_slot = None
                self._check(conn, now, wall)
                if not conn.closing:
                    self.schedule(conn, now, wall)
        if self._active:
            self._announce_activity()

    def _check(self, conn: Hosted, now: float, wall: float) -> None:
        """One connection's timeouts and heart-beat, as of ``now`` (monotonic) and ``wall``."""
        session = conn.session
        if session.state is not SessionState.CONNECTED:
            connect_timeout = self.settings.connect_timeout
            if connect_timeout and now - conn.created > connect_timeout:
                conn.fail(
                    ErrorMessage.CONNECT_TIMEOUT,
                    detail=f"CONNECT timeout: no CONNECT frame within {connect_timeout:g} s",
                    reason="connect_timeout",
                )
            return
        if conn.deadline is not None and wall >= conn.deadline:
            conn.fail(
                ErrorMessage.CREDENTIAL_EXPIRED,
                detail="token expired\nthe session's token expired; reconnect with a fresh token",
                reason="token_expired",
            )
            return
        frame_timeout = self.settings.frame_timeout
        started = conn.frame_started
        if frame_timeout and started is not None and now - started > frame_timeout:
            conn.fail(
                ErrorMessage.FRAME_TIMEOUT,
                detail=f"frame timeout: a frame begun {now - started:.1f} s ago is still "
                f"unfinished (frame_timeout {frame_timeout:g} s)",
                reason="frame_timeout",
            )
            return
        idle_timeout = self.access.limits.idle_timeout
        if idle_timeout and now - conn.last_read > idle_timeout:
            conn.fail(
                ErrorMessage.IDLE_TIMEOUT,
                detail=f"idle timeout: nothing received for {idle_timeout:g} s",
                reason="idle_timeout",
            )
            return
        plan = session.heartbeat
        if plan is None:
            return
        grace = self.settings.heartbeat_grace
        if plan.expect_every_ms and now - conn.last_read > plan.expect_every_ms * grace / 1000:
            silent = now - conn.last_read
            conn.fail(
                ErrorMessage.HEARTBEAT_TIMEOUT,
                detail=f"heart-beat timeout: nothing received for {silent:.1f} s "
                f"(expected every {plan.expect_every_ms} ms)",
                reason="heartbeat_timeout",
            )
            return
        if plan.send_every_ms and now - conn.last_write >= plan.send_every_ms / 1000 * 0.9:
            conn.heartbeat()

    def schedule(self, conn: Hosted, now: float, wall: float) -> None:
        """File ``conn`` in the wheel under the earliest time one of its timers can fall due
        (the CONNECT timeout before CONNECTED; then the token deadline, the idle timeout and
        the heart-beats). Call it when the session's state or timers change."""
        if conn.session.state is not SessionState.CONNECTED:
            connect_timeout = self.settings.connect_timeout
            self._file(conn, conn.created + connect_timeout if connect_timeout else None)
            return
        due: float | None = None
        if conn.deadline is not None:
            due = now + min(conn.deadline - wall - WALL_CLOCK_SLACK, WALL_CLOCK_RECHECK)
        idle_timeout = self.access.limits.idle_timeout
        if idle_timeout:
            due = _earlier(due, conn.last_read + idle_timeout)
        frame_timeout = self.settings.frame_timeout
        started = conn.frame_started
        if frame_timeout and started is not None:
            due = _earlier(due, started + frame_timeout)
        plan = conn.session.heartbeat
        if plan is not None:
            if plan.expect_every_ms:
                grace = self.settings.heartbeat_grace
                due = _earlier(due, conn.last_read + plan.expect_every_ms * grace / 1000)
            if plan.send_every_ms:
                due = _earlier(due, conn.last_write + plan.send_every_ms / 1000 * 0.9)
        self._file(conn, due)

    def _file(self, conn: Hosted, due: float | None) -> None:
        """Move ``conn`` to the wheel slot of ``due`` (None: out of the wheel)."""
        slot = None if due is None else max(int((due - _EARLY) // TICK_SECONDS), self._timer_next)
        old = conn.timer_slot
        if slot == old:
            return
        timers = self._timers
        if old is not None:
            bucket = timers.get(old)
            if bucket is not None:
                bucket.discard(conn)
                if not bucket:
                    del timers[old]
        conn.timer_slot = slot
        if slot is not None:
            bucket = timers.get(slot)
            if bucket is None:
                timers[slot] = {conn}
            else:
                bucket.add(conn)

    def evict(self, user: str, destination: str, error: ClientError) -> int:
        """End, with ``error``, every connection of ``user`` subscribed to ``destination``
        (say a room its user was removed from); how many."""
        evicted = 0
        for conn in list(self.connections):
            if conn.user == user and not conn.closing and conn.subscribed_to(destination):
                conn.fail(error.message, detail=error.detail, reason=error.reason)
                evicted += 1
        return evicted

    # -- broker loss -------------------------------------------------------------------------

    def broker_lost(self, reason: str) -> None:
        """The relay lost RabbitMQ: every connection is closed with an ERROR that says so."""
        log.warning(
            "broker connection lost: %s; closing %d connections", reason, len(self.connections)
        )
        for conn in list(self.connections):
            conn.fail(
                ErrorMessage.BROKER_CONNECTION_LOST,
                detail=f"broker connection lost ({reason}); reconnect and resubscribe",
                reason="broker_lost",
            )


def _earlier(due: float | None, other: float) -> float:
    return other if due is None or other < due else due
