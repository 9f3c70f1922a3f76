"""The JSON presence publishes, and its STOMP headers.

* chat.presence.v1, ``event-type: presence``: a user's status changed, one event per room the
  user is a member of (``room`` says which), published to ``/topic/room.<room>``;
* chat.presence_snapshot.v1, ``event-type: presence_snapshot``: the answer to a query, on
  ``/user/<asker>/queue/presence`` and as the HTTP API's body.

Presence events are transient like typing: not persistent, never cached nor stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from chatstate.presence import UserPresence
from gateway.presence.store import PresenceChange

__all__ = [
    "PRESENCE_HEADERS",
    "SNAPSHOT_HEADERS",
    "presence_event",
    "snapshot",
    "snapshot_entries",
]

Headers = tuple[tuple[str, str], ...]

JSON = "application/json"
PRESENCE_HEADERS: Headers = (
    ("event-type", "presence"),
    ("content-type", JSON),
    ("persistent", "false"),
)
SNAPSHOT_HEADERS: Headers = (
    ("event-type", "presence_snapshot"),
    ("content-type", JSON),
    ("persistent", "false"),
)


def presence_event(change: PresenceChange, room: str) -> bytes:
    """chat.presence.v1 for ``change``, as told to ``room``."""
    return orjson.dumps(
        {
            "v": 1,
            "type": "presence",
            "user": change.user,
            "status": change.status,
            "at": change.at,
            "room": room,
            "last_seen": change.last_seen,
        }
    )


def snapshot_entries(found: Sequence[UserPresence], asker: str | None) -> list[dict[str, Any]]:
    """The snapshot's ``users``: each as ``asker`` may see them (their own entry says whether
    they are invisible)."""
    entries = []
    for presence in found:
        status, last_seen = presence.seen_by(asker)
        entry: dict[str, Any] = {"user": presence.user, "status": status}
        if last_seen is not None:
            entry["last_seen"] = last_seen
        if presence.user == asker:
            entry["invisible"] = presence.invisible_since is not None
        entries.append(entry)
    return entries


def snapshot(
    entries: list[dict[str, Any]],
    *,
    at: int,
    room: str | None = None,
    query_id: str | None = None,
    more: bool = False,
) -> bytes:
    """chat.presence_snapshot.v1."""
    doc: dict[str, Any] = {"v": 1, "type": "presence_snapshot", "at": at, "users": entries}
    if room is not None:
        doc["room"] = room
    if query_id is not None:
        doc["query_id"] = query_id
    if more:
        doc["more"] = True
    return orjson.dumps(doc)
