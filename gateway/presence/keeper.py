"""`PresenceKeeper`: the node's presence loop.

Once per interval (default 1 s) it takes what the node's sessions did
(`gateway.presence.tracker`) and makes it one step in Redis (`PresenceStore.sync`; a step per
1,000 users when more changed): the step renews the node's lease, records the users who came,
went and were active, and sweeps: drops the users of one node whose lease lapsed and looks at
the users whose published status is due to change. Every node runs the same loop, so a dead
node's users are found by the others within a lease plus an interval; the step is atomic, so
only one node publishes a given change. The changes a step publishes go to the rooms
(`gateway.presence.announcer`) from a task of their own, so a burst of announcements never
delays the next step (and the lease it renews).

A step that fails (Redis unreachable) is put back and tried again at the next interval. A node
whose lease lapsed anyway (its users were dropped by another node) sends all of its users
again. On stop, the node's users are handed over as last seen now: they go offline after the
grace unless they reconnect to another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from gateway.presence.announcer import PresenceAnnouncer
from gateway.presence.store import PresenceChange, PresenceStore
from gateway.presence.tracker import PresenceBatch, PresenceTracker

__all__ = ["PresenceKeeper"]

log = logging.getLogger("stompgate.presence")

STEP_USERS = 1000
"""Users one Redis step carries at most (a bigger batch takes several)."""

SWEEP_USERS = 1000
"""Due users one step looks at, at most."""


class PresenceKeeper:
    def __init__(
        self,
        store: PresenceStore,
        tracker: PresenceTracker,
        announcer: PresenceAnnouncer,
        *,
        interval: float,
        node_id: str = "",
    ) -> None:
        self._store = store
        self._tracker = tracker
        self._announcer = announcer
        self._interval = interval
        #: The node's presence identity: one per process, so a restarted node is a new one.
        self.token = f"{node_id}-{secrets.token_hex(4)}" if node_id else secrets.token_hex(8)
        self._queue: asyncio.Queue[list[PresenceChange]] = asyncio.Queue()
        self._loop: asyncio.Task[None] | None = None
        self._teller: asyncio.Task[None] | None = None
        self._failing = False
        self.steps = 0  # Redis steps made

    async def start(self) -> None:
        """Register the node (with the users it has already) and start the loop."""
        await self._resync()
        self._teller = asyncio.create_task(self._tell_forever(), name="presence-announcer")
        self._loop = asyncio.create_task(self._run_forever(), name="presence-keeper")

    async def stop(self) -> None:
        """Record what is left (the node's sessions are closed by now), hand the node's users
        over, and send the announcements still queued. Idempotent."""
        if self._loop is None:
            return  # never started, or stopped already
        self._loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop
        self._loop = None
        try:
            await self.step(sweep=False)
            self._queue.put_nowait(await self._store.retire(self.token))
            self.steps += 1
        except Exception:
            log.warning("presence: could not hand this node's users over", exc_info=True)
        if self._teller is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=5)
            self._teller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._teller
            self._teller = None

    async def step(self, *, sweep: bool = True) -> None:
        """One round: what the sessions did since the last one, then (``sweep``) the sweep."""
        batch = self._tracker.take()
        try:
            changes = await self._push(batch, sweep=sweep)
        except BaseException:
            self._tracker.untake(batch)
            raise
        if changes:
            self._queue.put_nowait(changes)

    async def _push(self, batch: PresenceBatch, *, sweep: bool) -> list[PresenceChange]:
        changes: list[PresenceChange] = []
        active, joins, leaves = list(batch.active), list(batch.joins), list(batch.leaves)
        first = True
        while first or active or joins or leaves:
            room = STEP_USERS
            step_active, active = active[:room], active[room:]
            room -= len(step_active)
            step_joins, joins = joins[:room], joins[room:]
            room -= len(step_joins)
            step_leaves, leaves = leaves[:room], leaves[room:]
            got = await self._store.sync(
                self.token,
                active=step_active,
                joins=step_joins,
                leaves=step_leaves,
                sweep=SWEEP_USERS if sweep and first else 0,
            )
            self.steps += 1
            first = False
            if got is None:
                log.warning("presence: this node's lease had lapsed; sending all its users again")
                return changes + await self._resync()
            changes += got
        return changes

    async def _resync(self) -> list[PresenceChange]:
        users = self._tracker.users()
        self._tracker.take()  # all of them are in the full step
        changes = await self._store.sync(self.token, joins=users, full=True)
        self.steps += 1
        return changes or []

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_step = loop.time() + self._interval
        while True:
            await asyncio.sleep(max(0.0, next_step - loop.time()))
            next_step += self._interval
            if next_step < loop.time():  # fell behind (a stalled loop): do not catch up
                next_step = loop.time() + self._interval
            try:
                await self.step()
            except Exception as exc:
                if not self._failing:
                    log.warning("presence: a step failed (retrying every interval): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("presence: steps succeed again")
                self._failing = False

    async def _tell_forever(self) -> None:
        while True:
            changes = await self._queue.get()
            try:
                await self._announcer.announce(changes)
            finally:
                self._queue.task_done()
