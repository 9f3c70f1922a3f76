"""`PresenceTracker`: the node's lifecycle events, boiled down to what presence must tell Redis.

A lifecycle listener (the node calls it; see `gateway.lifecycle`), in memory, with no I/O: it
counts each user's live sessions on this node and collects, until :meth:`take` hands them to
the keeper (`gateway.presence.keeper`):

* *joins*: users whose first session here was authenticated;
* *leaves*: users whose last session here closed (a user who leaves and comes back between
  two takes is neither: Redis never needs to know);
* *active*: users whose sessions read something (frames or heart-beats), at most once per
  ``active_every`` seconds per user, from the node's batched activity (one call per tick).

So 10,000 idle sessions cost Redis nothing per heart-beat: a user's last-active time is
written at most once per ``active_every``, in the keeper's one step per interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PresenceBatch", "PresenceTracker", "SessionInfo"]


class SessionInfo(Protocol):
    """What the tracker reads of a connection (`gateway.lifecycle.ConnectionInfo` is one)."""

    @property
    def user(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PresenceBatch:
    active: tuple[str, ...]
    joins: tuple[str, ...]
    leaves: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.active or self.joins or self.leaves)


class PresenceTracker:
    """Implements `gateway.lifecycle.LifecycleListener` (structurally)."""

    __slots__ = ("_active", "_active_every", "_clock", "_joins", "_leaves", "_sessions", "_written")

    def __init__(self, *, active_every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._active_every = active_every
        self._clock = clock
        self._sessions: dict[str, int] = {}  # user -> live sessions on this node
        self._written: dict[str, float] = {}  # user -> when their activity was last taken
        self._joins: set[str] = set()
        self._leaves: set[str] = set()
        self._active: set[str] = set()

    def __len__(self) -> int:
        """Users with a live session on this node."""
        return len(self._sessions)

    def users(self) -> list[str]:
        return list(self._sessions)

    # -- lifecycle events ------------------------------------------------------------------

    def on_opened(self, conn: SessionInfo) -> None:
        pass

    def on_authenticated(self, conn: SessionInfo) -> None:
        user = conn.user
        if user is None:
            return
        count = self._sessions.get(user, 0)
        self._sessions[user] = count + 1
        if count == 0:
            self._written[user] = self._clock()  # a join records the time itself
            if user in self._leaves:
                self._leaves.discard(user)  # back before Redis heard it was gone
            else:
                self._joins.add(user)

    def on_closed(self, conn: SessionInfo, reason: str) -> None:
        user = conn.user
        count = None if user is None else self._sessions.get(user)
        if user is None or count is None:
            return  # never authenticated
        if count > 1:
            self._sessions[user] = count - 1
            return
        del self._sessions[user]
        self._written.pop(user, None)
        self._active.discard(user)
        if user in self._joins:
            self._joins.discard(user)  # gone before Redis heard it came
        else:
            self._leaves.add(user)

    def on_activity(self, conns: Sequence[SessionInfo]) -> None:
        now = self._clock()
        every = self._active_every
        written = self._written
        for conn in conns:
            user = conn.user
            if user is None:
                continue
            last = written.get(user)
            if last is not None and now - last >= every:
                written[user] = now
                self._active.add(user)

    # -- the keeper's side -----------------------------------------------------------------

    def take(self) -> PresenceBatch:
        """What happened since the last take (and forget it)."""
        batch = PresenceBatch(tuple(self._active), tuple(self._joins), tuple(self._leaves))
        self._active.clear()
        self._joins.clear()
        self._leaves.clear()
        return batch

    def untake(self, batch: PresenceBatch) -> None:
        """Put back a batch Redis did not get (its step failed), under what came since."""
        for user in batch.leaves:
            if user in self._joins:
                self._joins.discard(user)  # left, came back: Redis still has them
            elif user not in self._sessions:
                self._leaves.add(user)
        for user in batch.joins:
            if user in self._leaves:
                self._leaves.discard(user)  # came, went: Redis never had them
            elif user in self._sessions:
                self._joins.add(user)
        self._active.update(u for u in batch.active if u in self._sessions)
