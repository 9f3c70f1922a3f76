"""`PresenceStore`: presence in Redis, one Lua step per change (see `gateway.presence.lua`;
the key layout and the reads are `chatstate.presence`'s).

The node calls :meth:`PresenceStore.sync` once per presence interval with what its sessions
did since the last call (users who came, went, were active); the same step renews the node's
lease and, when asked, sweeps: drops one dead node's users and looks at the users whose
published status may be due to change. Each step returns the changes it published, for the
caller to send to the rooms; only one node ever gets a given change (the step is atomic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from chatstate.presence import PresenceReader, Status, UserPresence, script_args
from gateway.presence.lua import INVISIBLE, SYNC

__all__ = ["KEEP_MS", "PresenceChange", "PresenceStore", "UserPresence"]

KEEP_MS = 30 * 24 * 3600 * 1000
"""How long a user's record (last seen, invisible) outlives their last live session."""


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A status change published to the rooms: ``user`` is now ``status`` (as of ``at``)."""

    user: str
    status: Status
    last_seen: int  # ms; for online, when they came
    at: int  # ms, Redis time


class PresenceStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        key_prefix: str,
        grace_ms: int,
        lease_ms: int,
        keep_ms: int = KEEP_MS,
    ) -> None:
        keys = ChatKeys(key_prefix)
        # The scripts build their keys from the prefix; this one, declared, routes them in a
        # Redis Cluster (they share its slot through the prefix's hash tag).
        self._route = [keys.presence_nodes()]
        self._head = script_args(keys, lease_ms=lease_ms, grace_ms=grace_ms, keep_ms=keep_ms)
        self._sync = redis.register_script(SYNC)
        self._invisible = redis.register_script(INVISIBLE)
        self.reader = PresenceReader(redis, keys, lease_ms=lease_ms)

    async def sync(
        self,
        token: str,
        *,
        active: Sequence[str] = (),
        joins: Sequence[str] = (),
        leaves: Sequence[str] = (),
        sweep: int = 0,
        full: bool = False,
    ) -> list[PresenceChange] | None:
        """One step for node ``token``: renew its lease, record ``active`` users' activity,
        the ``joins`` (a first session here) and ``leaves`` (the last one gone); with
        ``sweep`` > 0, drop one dead node and look at up to ``sweep`` due users. ``full``:
        ``joins`` are all of the node's users (at start, and to resync).

        The published changes, or None when the node's lease had lapsed and its users were
        dropped meanwhile: call again with ``full`` and every local user.
        """
        mode = "full" if full else "tick"
        args = [*self._head, token, mode, len(active), len(joins), len(leaves), sweep]
        reply = await self._sync(keys=self._route, args=[*args, *active, *joins, *leaves])
        if reply and _text(reply[0]) == "resync":
            return None
        return _changes(reply)

    async def retire(self, token: str) -> list[PresenceChange]:
        """Node ``token`` stops: its users were last live now (they go offline after the
        grace unless they come back on another node)."""
        reply = await self._sync(keys=self._route, args=[*self._head, token, "retire", 0, 0, 0, 0])
        return _changes(reply)

    async def set_invisible(self, user: str, invisible: bool) -> list[PresenceChange]:
        reply = await self._invisible(
            keys=self._route, args=[*self._head, user, "1" if invisible else "0"]
        )
        return _changes(reply)

    async def query(self, users: Sequence[str]) -> list[UserPresence]:
        """The true presence of ``users`` (in order; one Redis step)."""
        return await self.reader.query(users)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _changes(reply: Sequence[Any]) -> list[PresenceChange]:
    changes = []
    for i in range(0, len(reply), 4):
        status: Status = "online" if _text(reply[i + 1]) == "online" else "offline"
        changes.append(
            PresenceChange(_text(reply[i]), status, int(reply[i + 2]), int(reply[i + 3]))
        )
    return changes
