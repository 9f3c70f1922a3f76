"""`PresenceAnnouncer`: tells a user's rooms that the user's status changed.

One chat.presence.v1 per room the user is a member of, published once to
``/topic/room.<room>`` with ``event-type: presence`` (through the relay, confirmed), for rooms
of at most ``fanout_max`` members. Bigger rooms are not told: their members read presence on
demand (the HTTP API or ``/app/rooms/<room>/presence``), so one user's reconnect does not cost
a message to thousands of members (the trade-off System Design Interview, ch. 12, describes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from gateway.chat.destinations import room_topic
from gateway.presence.events import PRESENCE_HEADERS, presence_event
from gateway.presence.membership import RoomsOfUser
from gateway.presence.store import PresenceChange

__all__ = ["PresenceAnnouncer", "Publish"]

log = logging.getLogger("stompgate.presence")

Publish = Callable[[str, Sequence[tuple[str, str]], bytes], Awaitable[None]]
"""(destination, headers, body) -> returns once the broker confirmed; raises on failure."""

CONCURRENCY = 64
"""Users whose rooms are looked up and told at once."""


class PresenceAnnouncer:
    def __init__(self, rooms: RoomsOfUser, publish: Publish, *, fanout_max: int) -> None:
        self._rooms = rooms
        self._publish = publish
        self._fanout_max = fanout_max
        self.published = 0  # events published so far
        self.failed = 0  # events (or room lookups) that failed

    async def announce(self, changes: Sequence[PresenceChange]) -> None:
        """Tell the rooms of each changed user; failures are logged and counted, never raised
        (presence is at most once: a lost event is corrected by the next change or a query)."""
        for start in range(0, len(changes), CONCURRENCY):
            chunk = changes[start : start + CONCURRENCY]
            await asyncio.gather(*(self._tell_rooms(change) for change in chunk))

    async def _tell_rooms(self, change: PresenceChange) -> None:
        try:
            rooms = await self._rooms.rooms_of(change.user)
        except Exception:
            self.failed += 1
            log.warning("presence: rooms of %s not found", change.user, exc_info=True)
            return
        told = [room for room, size in rooms if size <= self._fanout_max]
        results = await asyncio.gather(
            *(
                self._publish(room_topic(room), PRESENCE_HEADERS, presence_event(change, room))
                for room in told
            ),
            return_exceptions=True,
        )
        for room, result in zip(told, results, strict=True):
            if isinstance(result, BaseException):
                self.failed += 1
                log.warning("presence event of %s to room %s failed: %s", change.user, room, result)
            else:
                self.published += 1
