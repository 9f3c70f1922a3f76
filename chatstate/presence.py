"""Presence in Redis: its key layout and who is online, read.

Written by the gateway's presence (`gateway.presence`: one Lua step per node and interval,
built on `PRELUDE`); read here by the gateway's queries and by the notify worker
(`PresenceReader`). Keys (`chatstate.keys.ChatKeys`, under the Redis prefix):

* ``presence:nodes`` sorted set {node token -> Redis time (ms) its lease runs out}: a node
  is alive while its lease has not run out; a node is its process (a fresh random token
  per start), and renews its lease every presence interval;
* ``presence:node:<token>`` set: the users with a live session on that node;
* ``presence:user:<user>`` hash: ``n:<token>`` (1 for each node the user has a session on),
  ``last`` (ms: last seen active), ``pub`` (the status the rooms were last told: ``online``
  or ``offline``, absent: never told), ``at`` (ms: when they were told), ``inv`` (ms:
  invisible since; absent: visible). Kept for a while after the user was last live (for
  last seen);
* ``presence:due`` sorted set {user -> ms}: when the user's published status is to be looked
  at again.

A user is *live* while one of their ``n:`` nodes is alive. Time is Redis's (``TIME``), so the
nodes' clocks never disagree about a lease. Reading needs no setting of the nodes': a lease
records when it runs out. Only the last seen of a user whose node died (and was not swept
yet) uses the lease length, the reader's ``lease_ms`` (that node's last renewal is its lease's
end minus the lease).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys, lua_key_function

__all__ = ["PRELUDE", "QUERY", "PresenceReader", "Status", "UserPresence", "script_args"]

Status = Literal["online", "offline"]

PRELUDE = "\n".join(
    (
        """
-- ARGV[1] the Redis key prefix, ARGV[2] the lease (ms), ARGV[3] the grace (ms), ARGV[4] how
-- long a user's hash outlives their last live session (ms); the script's own from ARGV[5] on.
local prefix = ARGV[1]
local lease = tonumber(ARGV[2])
local grace = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local out = {}
""",
        lua_key_function("nodes_key", ChatKeys.presence_nodes),
        lua_key_function("node_key", ChatKeys.presence_node, "token"),
        lua_key_function("user_key", ChatKeys.presence_user, "user"),
        lua_key_function("due_key", ChatKeys.presence_due),
        """
local nodes = nodes_key()
local due = due_key()

-- The user's state: live (a node of theirs alive), last seen (including a dead node's last
-- renewal), published status and when, invisible since (false: visible). Reads only.
local function state(ukey)
  local fields = redis.call('HGETALL', ukey)
  local st = {live = false, last = 0, dead = 0, pub = 'offline', at = 0, inv = false}
  for i = 1, #fields, 2 do
    local f, v = fields[i], fields[i + 1]
    if string.sub(f, 1, 2) == 'n:' then
      local ends = redis.call('ZSCORE', nodes, string.sub(f, 3))
      if ends then
        ends = tonumber(ends)
        if ends >= now then
          st.live = true
        elseif ends - lease > st.dead then
          st.dead = ends - lease
        end
      end
    elseif f == 'last' then
      st.last = tonumber(v)
    elseif f == 'pub' then
      st.pub = v
    elseif f == 'at' then
      st.at = tonumber(v)
    elseif f == 'inv' then
      st.inv = tonumber(v)
    end
  end
  if st.dead > st.last then st.last = st.dead end
  return st
end
""",
    )
)
"""What every presence script starts with: its arguments, Redis's time, the keys, `state`."""

QUERY = (
    PRELUDE
    + """
-- ARGV[5..] users. Returns per user: live (0/1), invisible since (ms, 0: visible), last seen
-- (ms, 0: never), flat. Reads only.
for k = 5, #ARGV do
  local st = state(user_key(ARGV[k]))
  out[#out + 1] = st.live and 1 or 0
  out[#out + 1] = st.inv or 0
  out[#out + 1] = st.last
end
return out
"""
)


def script_args(keys: ChatKeys, *, lease_ms: int, grace_ms: int = 0, keep_ms: int = 0) -> list[Any]:
    """The arguments every presence script takes first (`PRELUDE`)."""
    return [keys.prefix, lease_ms, grace_ms, keep_ms]


@dataclass(frozen=True, slots=True)
class UserPresence:
    """A user's true presence now, as only they may see it."""

    user: str
    live: bool  # a session on a live node
    invisible_since: int | None  # ms; None: visible
    last_seen: int | None  # ms; None: never seen

    def seen_by(self, asker: str | None) -> tuple[Status, int | None]:
        """(status, last seen) as ``asker`` sees it: an invisible user appears offline, and
        last seen when they went invisible, to everybody but themselves."""
        hidden = self.invisible_since is not None and asker != self.user
        if self.live and not hidden:
            return "online", self.last_seen
        last = self.last_seen
        if hidden and self.invisible_since is not None:
            last = self.invisible_since if last is None else min(last, self.invisible_since)
        return "offline", last


class PresenceReader:
    """Who is online, read (one Lua step for any number of users; nothing is written)."""

    def __init__(self, redis: aioredis.Redis, keys: ChatKeys, *, lease_ms: int = 0) -> None:
        """``lease_ms``: the nodes' lease, which only dates a dead node's users' last seen
        (0: at the lease's end)."""
        self._head = script_args(keys, lease_ms=lease_ms)
        self._route = [keys.presence_nodes()]  # routes the script in a Redis Cluster
        self._query = redis.register_script(QUERY)

    async def query(self, users: Sequence[str]) -> list[UserPresence]:
        """The true presence of ``users``, in order."""
        if not users:
            return []
        reply = await self._query(keys=self._route, args=[*self._head, *users])
        return [
            UserPresence(
                user,
                bool(int(reply[i])),
                int(reply[i + 1]) or None,
                int(reply[i + 2]) or None,
            )
            for user, i in zip(users, range(0, len(reply), 3), strict=True)
        ]

    async def is_online(self, user: str) -> bool:
        """Whether ``user`` has a live session on any node now (invisible or not: they are
        there; the grace before the rooms hear of a change does not count here)."""
        [presence] = await self.query([user])
        return presence.live
