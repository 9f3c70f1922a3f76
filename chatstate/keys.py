"""Every Redis key name of the chat's live state, defined here once.

All live under one configurable prefix (``STOMPGATE_REDIS_PREFIX``), except the rosters,
which live under the ACL's membership prefix (``STOMPGATE_MEMBERSHIP_PREFIX``: the ACL's
``member_of = "roster:{room}"`` rules read them). Room ids never contain ``:`` and client ids
never contain ``:``, so user ids (which may) can sit in the middle or at the end of a key
without two keys ever colliding.

Lua scripts that build keys themselves (for rooms or users they find inside the script) get
them from :func:`lua_key_function`, which writes the Lua for a `ChatKeys` method: the layout
stays defined here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MARKER", "ROSTER", "ChatKeys", "id_member", "lua_key_function", "roster"]

ROSTER = "roster:{room}"
"""A room's roster, as the ACL's ``member_of`` template names it (under the membership
prefix): a Redis set of the room's members."""

MARKER = ""
"""The member every membership cache set (a roster, a user's rooms) holds besides its
content, so an empty set and a lost one differ."""


def id_member(message_id: int) -> bytes:
    """A message id as the per-room id sets (unstored, inflight) hold it: 19 digits, so
    lexical order is id order."""
    return b"%019d" % message_id


def roster(room: str) -> str:
    """The roster's key as the ACL names it (without the membership prefix)."""
    return ROSTER.format(room=room)


@dataclass(frozen=True, slots=True)
class ChatKeys:
    prefix: str

    def recent(self, room: str) -> str:
        """Sorted set: the newest messages of a room (see `gateway.chat.recent`)."""
        return f"{self.prefix}room:{room}:recent"

    def unstored(self, room: str) -> str:
        """Sorted set: ids trimmed out of the recent cache not yet seen in the store (see
        `gateway.chat.unstored`)."""
        return f"{self.prefix}room:{room}:unstored"

    def inflight(self, room: str) -> str:
        """Hash {id (19 digits) -> client key}: posts reserved and not yet confirmed/aborted."""
        return f"{self.prefix}room:{room}:inflight"

    def rejected(self, room: str) -> str:
        """Sorted set (score 0, members the 19-digit id): the room's messages the persist
        worker dead-lettered as id conflicts (their id is stored as another message): never
        to be stored, so history stops waiting for them (see `gateway.chat.unstored`)."""
        return f"{self.prefix}room:{room}:rejected"

    def room_seq(self, room: str) -> str:
        """Counter: the room ordinals handed out, one per accepted post (for unread counts;
        set from the store when Redis has lost it)."""
        return f"{self.prefix}room:{room}:seq"

    def holes(self, room: str) -> str:
        """Sorted set (score 0, members the 19-digit id): posts that took a room ordinal and
        never became a message (aborted, or found dead); unread counts skip them."""
        return f"{self.prefix}room:{room}:holes"

    def node_last_id(self, node: int) -> str:
        """String (19 digits): the highest post id issued under Snowflake node id ``node``;
        every post's id is picked above it (see `gateway.chat.post_ledger`)."""
        return f"{self.prefix}snowflake:last:{node}"

    def roster_version(self, room: str) -> str:
        """Counter: bumped by every membership change of the room, so a rebuild of its
        roster cache from the store never writes back what a change made stale."""
        return f"{self.prefix}roster-v:{room}"

    def user_rooms(self, user: str) -> str:
        """Set: the rooms ``user`` belongs to (a cache of the room store; the member ``''``
        marks it as built, so an empty cache and a lost one differ)."""
        return f"{self.prefix}user-rooms:{user}"

    def user_rooms_version(self, user: str) -> str:
        """Counter: bumped by every change of the user's rooms (see `roster_version`)."""
        return f"{self.prefix}user-rooms-v:{user}"

    def control_channel(self) -> str:
        """Pub/sub channel every node listens to for membership changes."""
        return f"{self.prefix}rooms:control"

    def roster(self, roster_prefix: str, room: str) -> str:
        """Set: the members of ``room`` plus `MARKER` (a cache of the room store), under the
        ACL's membership prefix ``roster_prefix``."""
        return roster_prefix + roster(room)

    def client(self, user: str, client_id: str) -> str:
        """String: the message id a (user, client message id) pair was given."""
        return f"{self.prefix}client:{user}:{client_id}"

    def read(self, room: str, user: str) -> str:
        """Hash {id, seq}: the user's read pointer in the room, and how many room ordinals
        belong to ids up to it (see `gateway.chat.read_state`)."""
        return f"{self.prefix}read:{room}:{user}"

    # -- presence (see `chatstate.presence`) -----------------------------------------------

    def presence_nodes(self) -> str:
        """Sorted set {node token -> Redis time (ms) its lease runs out}: the node leases."""
        return f"{self.prefix}presence:nodes"

    def presence_node(self, token: str) -> str:
        """Set: the users with a live session on the node ``token``."""
        return f"{self.prefix}presence:node:{token}"

    def presence_user(self, user: str) -> str:
        """Hash: the user's presence (nodes with a session, last seen, published status,
        invisible since)."""
        return f"{self.prefix}presence:user:{user}"

    def presence_due(self) -> str:
        """Sorted set {user -> ms}: when the user's published status is to be looked at
        again."""
        return f"{self.prefix}presence:due"


_MARK = "\x00"
_MARKED = re.compile(_MARK + r"(\w+)" + _MARK)


def lua_key_function(name: str, key: Callable[..., str], *params: str) -> str:
    """``local function <name>(<params>) return <key> end``: the Lua that builds the key
    ``key(ChatKeys(prefix), *params)`` does, from the script's local ``prefix`` and the
    function's parameters. ``key`` is a `ChatKeys` method (``ChatKeys.room_seq``)."""
    built = key(ChatKeys(f"{_MARK}prefix{_MARK}"), *(f"{_MARK}{p}{_MARK}" for p in params))
    pieces: list[str] = []
    for i, part in enumerate(_MARKED.split(built)):
        if i % 2:
            pieces.append(part)  # a Lua variable: prefix or a parameter
        elif part:
            pieces.append("'" + part.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return f"local function {name}({', '.join(params)}) return {' .. '.join(pieces)} end"
