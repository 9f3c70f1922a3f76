"""Abuse limits: Origin allow-list, connection counts, rate limits, timeouts, sizes.

Everything here except ``ConnectionCounter`` is pure: no clock, no I/O; callers pass ``now``.
The transports own the timers and sockets and ask these objects what to do.

Each breach has a stable *kind* (``BREACH_KINDS``: the label of the breach metric, e.g.
``stompgate_limit_breaches_total{kind="frames_per_second"}``) and an exact ERROR message.  On a
breach the transport sends an ERROR carrying the message, closes the session, and increments
the metric.  "Nothing already accepted lost": limits are checked *before* a frame is handed to
the session, so the refused frame is the only one not processed; receipts and broker confirms
for earlier frames are flushed before the ERROR.

Setting a numeric limit to 0 disables it (documented in docs/security.md).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.auth import _env
from gateway.auth.errors import LimitExceeded

__all__ = [
    "BREACH_KINDS",
    "AbuseLimits",
    "Breach",
    "ConnectionCounter",
    "LimitExceeded",
    "SessionRateLimiter",
    "TokenBucket",
    "UserLease",
    "check_frame_size",
    "check_subscriptions",
    "origin_allowed",
    "origin_rejection",
]

log = logging.getLogger("stompgate.auth")

BREACH_KINDS = (
    "origin",
    "connections_per_ip",
    "connections_per_user",
    "frames_per_second",
    "bytes_per_second",
    "subscriptions",
    "connect_timeout",
    "idle_timeout",
    "frame_size",
)

MIB = 1024 * 1024


def _num(value: float) -> str:
    """1000000.0 -> '1000000', 2.5 -> '2.5' (for messages)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class AbuseLimits:
    """Per-connection and per-user limits.  Environment variables (prefix ``STOMPGATE_``):

    ================================  ============================  ==========================
    variable                          field                         default
    ================================  ============================  ==========================
    ``ALLOWED_ORIGINS``               ``origins``                   empty: same host only
    ``REQUIRE_ORIGIN``                ``require_origin``            ``false``
    ``MAX_CONNECTIONS_PER_IP``        ``max_connections_per_ip``    ``100``
    ``MAX_CONNECTIONS_PER_USER``      ``max_connections_per_user``  ``20``
    ``FRAMES_PER_SECOND``             ``frames_per_second``         ``50``
    ``FRAMES_BURST``                  ``frames_burst``              ``100``
    ``BYTES_PER_SECOND``              ``bytes_per_second``          ``1000000``
    ``BYTES_BURST``                   ``bytes_burst``               ``8388608`` (8 MiB)
    ``MAX_SUBSCRIPTIONS``             ``max_subscriptions``         ``100``
    ``CONNECT_TIMEOUT``               ``connect_timeout``           ``10`` seconds
    ``IDLE_TIMEOUT``                  ``idle_timeout``              ``120`` seconds
    ``MAX_FRAME_SIZE``                ``max_frame_size``            ``4194304`` (4 MiB)
    ``MAX_DESTINATION_LENGTH``        ``max_destination_length``    ``255`` bytes
    ================================  ============================  ==========================
    """

    origins: tuple[str, ...] = ()
    require_origin: bool = False
    max_connections_per_ip: int = 100
    max_connections_per_user: int = 20
    frames_per_second: float = 50.0
    frames_burst: int = 100
    bytes_per_second: float = 1_000_000.0
    bytes_burst: int = 8 * MIB
    max_subscriptions: int = 100
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0
    max_frame_size: int = 4 * MIB
    max_destination_length: int = 255

    def __post_init__(self) -> None:
        numbers: dict[str, float] = {
            "max_connections_per_ip": self.max_connections_per_ip,
            "max_connections_per_user": self.max_connections_per_user,
            "frames_per_second": self.frames_per_second,
            "frames_burst": self.frames_burst,
            "bytes_per_second": self.bytes_per_second,
            "bytes_burst": self.bytes_burst,
            "max_subscriptions": self.max_subscriptions,
            "connect_timeout": self.connect_timeout,
            "idle_timeout": self.idle_timeout,
            "max_frame_size": self.max_frame_size,
            "max_destination_length": self.max_destination_length,
        }
        for name, value in numbers.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.frames_per_second and self.frames_burst < 1:
            raise ValueError("frames_burst must be >= 1 when frames_per_second is set")
        if self.bytes_per_second and self.max_frame_size and self.bytes_burst < self.max_frame_size:
            raise ValueError(
                f"bytes_burst ({self.bytes_burst}) must be >= max_frame_size "
                f"({self.max_frame_size}), or a largest allowed frame could never pass"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_") -> AbuseLimits:
        d = cls()
        p = prefix
        return cls(
            origins=_env.get_list(environ, f"{p}ALLOWED_ORIGINS", d.origins),
            require_origin=_env.get_bool(environ, f"{p}REQUIRE_ORIGIN", d.require_origin),
            max_connections_per_ip=_env.get_int(
                environ, f"{p}MAX_CONNECTIONS_PER_IP", d.max_connections_per_ip
            ),
            max_connections_per_user=_env.get_int(
                environ, f"{p}MAX_CONNECTIONS_PER_USER", d.max_connections_per_user
            ),
            frames_per_second=_env.get_float(environ, f"{p}FRAMES_PER_SECOND", d.frames_per_second),
            frames_burst=_env.get_int(environ, f"{p}FRAMES_BURST", d.frames_burst),
            bytes_per_second=_env.get_float(environ, f"{p}BYTES_PER_SECOND", d.bytes_per_second),
            bytes_burst=_env.get_int(environ, f"{p}BYTES_BURST", d.bytes_burst),
            max_subscriptions=_env.get_int(environ, f"{p}MAX_SUBSCRIPTIONS", d.max_subscriptions),
            connect_timeout=_env.get_float(environ, f"{p}CONNECT_TIMEOUT", d.connect_timeout),
            idle_timeout=_env.get_float(environ, f"{p}IDLE_TIMEOUT", d.idle_timeout),
            max_frame_size=_env.get_int(environ, f"{p}MAX_FRAME_SIZE", d.max_frame_size),
            max_destination_length=_env.get_int(
                environ, f"{p}MAX_DESTINATION_LENGTH", d.max_destination_length
            ),
        )


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit breach: ``kind`` labels the metric, ``message`` goes into the ERROR frame."""

    kind: str
    message: str

    def error(self) -> LimitExceeded:
        return LimitExceeded(self.kind, self.message)


# -- rates -------------------------------------------------------------------------------------


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored; starts full.

    Pure: the caller passes ``now`` (any monotonic seconds).  A clock that steps backwards
    refills nothing.  A cost larger than ``burst`` can never be paid.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("rate and burst must be >= 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def allow(self, cost: float, now: float) -> bool:
        """Take ``cost`` tokens if there are enough (then True); else take nothing (False)."""
        self._refill(now)
        if cost <= self._tokens:
            self._tokens -= cost
            return True
        return False

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` tokens are available (``inf`` if never)."""
        self._refill(now)
        if cost <= self._tokens:
            return 0.0
        if cost > self.burst or self.rate == 0:
            return math.inf
        return (cost - self._tokens) / self.rate


class SessionRateLimiter:
    """Frames/s and bytes/s for one session: two token buckets, charged together.

    ``check(frame_bytes, now)`` charges one frame and ``frame_bytes`` bytes; both buckets are
    charged only if both can pay, so a refused frame costs nothing.
    """

    __slots__ = ("_bytes", "_frames", "limits")

    def __init__(self, limits: AbuseLimits) -> None:
        self.limits = limits
        self._frames = (
            TokenBucket(limits.frames_per_second, limits.frames_burst)
            if limits.frames_per_second
            else None
        )
        self._bytes = (
            TokenBucket(limits.bytes_per_second, limits.bytes_burst)
            if limits.bytes_per_second
            else None
        )

    def breach(self, frame_bytes: int, now: float) -> Breach | None:
        lim = self.limits
        if self._frames is not None and self._frames.available(now) < 1:
            return Breach(
                "frames_per_second",
                f"rate limit exceeded: frames_per_second {_num(lim.frames_per_second)} "
                f"(burst {lim.frames_burst})",
            )
        if self._bytes is not None and self._bytes.available(now) < frame_bytes:
            return Breach(
                "bytes_per_second",
                f"rate limit exceeded: bytes_per_second {_num(lim.bytes_per_second)} "
                f"(burst {lim.bytes_burst})",
            )
        if self._frames is not None:
            self._frames.allow(1, now)
        if self._bytes is not None:
            self._bytes.allow(frame_bytes, now)
        return None

    def check(self, frame_bytes: int, now: float) -> str | None:
        """None if the frame may pass (and charge it), else the exact ERROR message."""
        found = self.breach(frame_bytes, now)
        return None if found is None else found.message


# -- sizes and counts --------------------------------------------------------------------------


def check_frame_size(size: int, limits: AbuseLimits) -> Breach | None:
    if limits.max_frame_size and size > limits.max_frame_size:
        return Breach(
            "frame_size", f"frame too large: {size} bytes > max_frame_size {limits.max_frame_size}"
        )
    return None


def check_subscriptions(current: int, limits: AbuseLimits) -> Breach | None:
    """Before adding a subscription to a session that has ``current`` of them."""
    if limits.max_subscriptions and current + 1 > limits.max_subscriptions:
        return Breach(
            "subscriptions",
            f"too many subscriptions: {current + 1} > max_subscriptions {limits.max_subscriptions}",
        )
    return None


# -- Origin ------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, hostname, port) of an Origin (or allow-list entry), None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _split_host(host: str) -> tuple[str, int | None] | None:
    """(hostname, port or None) of a Host header."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").lower()
    return (name, port) if name else None


def _entry_matches(entry: str, scheme: str, host: str, port: int) -> bool:
    entry = entry.strip().lower()
    if "://" not in entry:  # a bare host name: any scheme, any port
        return entry == host or (entry.startswith("*.") and host.endswith(entry[1:]))
    entry_scheme, _, rest = entry.partition("://")
    wildcard = rest.startswith("*.")
    wanted = _split_origin(f"{entry_scheme}://{'x' + rest[1:] if wildcard else rest}")
    if wanted is None:
        return False
    w_scheme, w_host, w_port = wanted
    if w_scheme != scheme or w_port != port:
        return False
    return host.endswith(w_host[1:]) if wildcard else w_host == host


def origin_allowed(
    origin: str | None,
    host: str | None,
    allowed: tuple[str, ...],
    *,
    allow_missing: bool = True,
) -> bool:
    """May a WebSocket handshake with this ``Origin`` proceed?

    - No Origin header: ``allow_missing`` (browsers always send one; non-browser clients often
      do not, and they are not the cross-site threat).  ``AbuseLimits.require_origin`` flips it.
    - The same host as the ``Host`` header is always allowed (hostname equal; if the Host header
      has a port, the origin's port must equal it).
    - Otherwise the origin must match an entry of ``allowed``: ``https://chat.example.com``
      (scheme, host and port must match; default ports implied), ``https://*.example.com``
      (any subdomain, not the apex), a bare ``chat.example.com`` (any scheme and port), or
      ``*`` (anything).  ``null`` (sandboxed frames, ``file:``) passes only if listed.
    """
    if origin is None or origin.strip() == "":
        return allow_missing
    origin = origin.strip()
    if "*" in allowed:
        return True
    if origin.lower() == "null":
        return "null" in allowed
    parsed = _split_origin(origin)
    if parsed is None:
        return False
    scheme, name, port = parsed
    if host:
        own = _split_host(host)
        if own is not None and own[0] == name and (own[1] is None or own[1] == port):
            return True
    return any(_entry_matches(entry, scheme, name, port) for entry in allowed if entry != "null")


def origin_rejection(origin: str | None) -> Breach:
    """The breach for a refused Origin (send as HTTP 403 body or as an ERROR, then close)."""
    shown = "".join(ch if 0x20 < ord(ch) < 0x7F else "?" for ch in (origin or "")[:100])
    return Breach("origin", f"origin not allowed: {shown}")


# -- connection counts -------------------------------------------------------------------------

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
