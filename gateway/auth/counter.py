"""Connections per client IP (this process) and per user (all nodes, through Redis).

The only module of the abuse limits with I/O: ``ConnectionCounter`` keeps per-user leases in
Redis so every node sees the same count; ``UserLease`` is one session's slot.  The limits come
from ``AbuseLimits``; a refusal raises ``LimitExceeded`` (kind ``connections_per_ip`` or
``connections_per_user``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.auth.errors import LimitExceeded
from gateway.auth.limits import AbuseLimits

__all__ = ["ConnectionCounter", "UserLease"]

log = logging.getLogger("stompgate.auth")

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  return -(n + 1)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000))
return n + 1
"""

_REFRESH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expires, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000))
return #ARGV - 1
"""


@dataclass(frozen=True, slots=True)
class UserLease:
    """One session's slot in its user's connection count; give it back to ``release_user``."""

    user: str
    member: str  # the session's member of the Redis set; "" when not shared
    shared: bool  # True: counted in Redis; False: counted in this process only


class ConnectionCounter:
    """Connections per client IP (this process) and per user (all nodes, through Redis).

    Per user, Redis holds a sorted set ``<key_prefix>conn:<user>`` with one member per live
    session (``<node id>:<n>``) scored by its expiry (Redis server time).  Acquiring is one Lua
    script (purge expired, count, add if under the limit), so two nodes never both take the last
    slot.  Live sessions are kept alive by ``refresh()``, which the gateway calls every
    ``lease_ttl / 3`` seconds; the sessions of a node that dies vanish after ``lease_ttl``
    (the "TTL safety").  If Redis fails, the count falls back to this process (logged), so a
    Redis outage does not refuse every connection.  Without a Redis client, per-user counts
    are per process.
    """

    def __init__(
        self,
        limits: AbuseLimits,
        redis: Redis | None = None,
        *,
        key_prefix: str = "stompgate:",
        node_id: str | None = None,
        lease_ttl: float = 90.0,
    ) -> None:
        self.limits = limits
        self._redis = redis
        self._prefix = key_prefix
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.lease_ttl = lease_ttl
        self._ips: dict[str, int] = {}
        self._local_users: dict[str, int] = {}
        self._shared: dict[str, set[str]] = {}  # user -> members held by this node
        self._serial = 0
        self._acquire: Any = redis.register_script(_ACQUIRE) if redis is not None else None
        self._refresh: Any = redis.register_script(_REFRESH) if redis is not None else None

    # per IP (synchronous: called at accept time, before any protocol work)

    def acquire_ip(self, ip: str) -> None:
        limit = self.limits.max_connections_per_ip
        count = self._ips.get(ip, 0) + 1
        if limit and count > limit:
            raise LimitExceeded(
                "connections_per_ip",
                f"too many connections from {ip}: {count} > max_connections_per_ip {limit}",
            )
        self._ips[ip] = count

    def release_ip(self, ip: str) -> None:
        count = self._ips.get(ip, 0) - 1
        if count > 0:
            self._ips[ip] = count
        else:
            self._ips.pop(ip, None)

    def ip_count(self, ip: str) -> int:
        return self._ips.get(ip, 0)

    # per user

    def _key(self, user: str) -> str:
        return f"{self._prefix}conn:{user}"

    def _user_error(self, user: str, count: int) -> LimitExceeded:
        limit = self.limits.max_connections_per_user
        return LimitExceeded(
            "connections_per_user",
            f"too many connections for user {user}: {count} > max_connections_per_user {limit}",
        )

    async def acquire_user(self, user: str) -> UserLease:
        """Take a slot for ``user`` or raise ``LimitExceeded``."""
        limit = self.limits.max_connections_per_user
        self._serial += 1
        member = f"{self.node_id}:{self._serial}"
        if self._acquire is not None and limit:
            try:
                result = int(
                    await self._acquire(
                        keys=[self._key(user)], args=[member, limit, self.lease_ttl]
                    )
                )
            except RedisError as exc:
                log.error("per-user connection count unavailable, counting locally: %s", exc)
            else:
                if result < 0:
                    raise self._user_error(user, -result)
                self._shared.setdefault(user, set()).add(member)
                return UserLease(user, member, shared=True)
        count = self._local_users.get(user, 0) + 1
        if limit and count > limit:
            raise self._user_error(user, count)
        self._local_users[user] = count
        return UserLease(user, "", shared=False)  # no member: nothing to find in Redis

    async def release_user(self, lease: UserLease) -> None:
        """Give the slot back (idempotent)."""
        if not lease.shared:
            count = self._local_users.get(lease.user, 0) - 1
            if count > 0:
                self._local_users[lease.user] = count
            else:
                self._local_users.pop(lease.user, None)
            return
        members = self._shared.get(lease.user)
        if members is None or lease.member not in members:
            return
        members.discard(lease.member)
        if not members:
            del self._shared[lease.user]
        assert self._redis is not None
        try:
            await self._redis.zrem(self._key(lease.user), lease.member)
        except RedisError as exc:  # the lease expires by itself after lease_ttl
            log.error("cannot release connection slot of %s: %s", lease.user, exc)

    async def refresh(self) -> None:
        """Extend this node's live leases; call every ``lease_ttl / 3`` seconds."""
        if self._refresh is None:
            return
        for user, members in list(self._shared.items()):
            try:
                await self._refresh(keys=[self._key(user)], args=[self.lease_ttl, *members])
            except RedisError as exc:
                log.error("cannot refresh connection slots of %s: %s", user, exc)

    async def user_count(self, user: str) -> int:
        """Live sessions of ``user`` (all nodes when shared through Redis)."""
        if self._redis is None:
            return self._local_users.get(user, 0)
        return int(await self._redis.zcard(self._key(user))) + self._local_users.get(user, 0)
