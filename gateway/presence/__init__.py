"""Presence: who is online, told to their rooms without flapping, read on demand.

A user is online while at least one of their sessions is live on any node. Modules, one job
each: `settings` (``STOMPGATE_PRESENCE*``), `tracker` (the node's lifecycle events, in memory:
who came, went, was active), `lua` (the Redis steps that write: node leases, grace, sweep; the
key layout and the reads are `chatstate.presence`'s), `store` (`PresenceStore`: the steps from
Python), `keeper` (`PresenceKeeper`: the node's loop, one step per interval), `membership`
(`RoomsOfUser`: the rooms of a user and the members of a room, from the rooms' membership),
`announcer` (events to the rooms), `events` (the JSON), `service` (queries, invisible mode, the
``/app`` destinations), `api` (the HTTP routes). `gateway.presence_bridge` wires it into a node.
See docs/internals.md, "Presence".
"""

from gateway.presence.announcer import PresenceAnnouncer
from gateway.presence.keeper import PresenceKeeper
from gateway.presence.membership import NoRooms, RoomMembership, RoomsOfUser
from gateway.presence.service import PresenceError, PresenceService
from gateway.presence.settings import PresenceSettings
from gateway.presence.store import PresenceChange, PresenceStore, UserPresence
from gateway.presence.tracker import PresenceBatch, PresenceTracker

__all__ = [
    "NoRooms",
    "PresenceAnnouncer",
    "PresenceBatch",
    "PresenceChange",
    "PresenceError",
    "PresenceKeeper",
    "PresenceService",
    "PresenceSettings",
    "PresenceStore",
    "PresenceTracker",
    "RoomMembership",
    "RoomsOfUser",
    "UserPresence",
]
