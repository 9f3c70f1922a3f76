"""The chat's live state in Redis: key layout and read-only queries shared by the gateway and
the workers.

A core package: the gateway (which keeps this state: posts, read pointers, membership caches,
presence) and the workers (the notify worker reads it) both import it, and it imports neither
of them (only `store`, for the room store it falls back on). Modules, one job each:

* `keys` (`ChatKeys`): every key name, once, and the Lua that builds them inside scripts;
* `membership` (`MembershipCache`, `RoomMembers`): a room's roster and a user's rooms;
* `unread` (`UnreadReader`): unread counts and read pointers;
* `presence` (`PresenceReader`): who is online, and the start every presence script shares;
* `client` (`redis_client`): how a process connects to Redis, over a bounded, named pool.
"""

from chatstate.keys import ChatKeys
from chatstate.membership import MembershipCache, RoomMembers
from chatstate.presence import PresenceReader, UserPresence
from chatstate.unread import UnreadReader, UnreadRow

__all__ = [
    "ChatKeys",
    "MembershipCache",
    "PresenceReader",
    "RoomMembers",
    "UnreadReader",
    "UnreadRow",
    "UserPresence",
]
