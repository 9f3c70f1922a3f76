"""Node ids for Snowflakes, leased in Redis so that two live nodes never share one.

Theory of operation
-------------------
- ``acquire()`` runs one Lua script that walks ids 0..1023 and takes the first free one with
  ``SET {prefix}snowflake:node:{id} <random token> NX PX ttl``.
- A background task renews every ``renew_every_ms`` with a compare-and-renew script (only the
  token holder can extend). The lease is *locally* valid until the start of the last
  successful renewal plus ``ttl * 0.9`` (margin for clock-rate drift against Redis), measured
  on the monotonic clock. A renewal that finds another token, or no renewal success before the
  validity runs out, loses the lease for good: `next_id` then raises `LeaseLostError` instead
  of risking a duplicate. A transient Redis error alone is retried while validity remains.
- Clock skew between nodes could still let a new holder of an expired id reissue timestamps
  the previous holder used. To rule that out, every holder records a timestamp *floor*
  (``{prefix}snowflake:floor:{id}``, no expiry) before using it: "I issue no id with a
  timestamp above this". A new holder seeds its generator with the previous floor, and
  `next_id` refuses timestamps above the holder's own recorded floor until the next renewal
  raises it (``max(wall clock, last issued ms) + ttl`` at each renewal).
- Redis can lose the lease (a restart without persistence, a failover to a replica that had
  not seen it): a renewal that finds *no* key, or a lease that ran out while Redis was away,
  is given up and a new one taken at the next renewal tick (the same id if it is free, else
  the first free one), its generator seeded above both the recorded floor and every id this
  process issued, so the process's own ids keep rising. `next_id` raises `LeaseLostError`
  in between (posts are refused, never issued under an id the node does not hold).
- ``release()`` stops renewing and, if the key is still ours, records the final floor (the
  last issued timestamp + 1, or the wall clock's if later: lower than the renewals' floor,
  which is a ttl ahead) and deletes the key, so the next holder issues ids at the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from gateway.chat.snowflake import MAX_NODE, SnowflakeGenerator

log = logging.getLogger("stompgate.chat.lease")

# KEYS[1] (the key of node id 0) is declared only to route the script in a Redis Cluster: the
# keys it builds share its slot through the prefix's hash tag (see chatstate.client).
_ACQUIRE = """
local prefix, token, ttl = ARGV[1], ARGV[2], ARGV[3]
local function take(i)
  if redis.call('SET', prefix .. 'node:' .. i, token, 'NX', 'PX', ttl) then
    return {i, redis.call('GET', prefix .. 'floor:' .. i) or '0'}
  end
end
local preferred = tonumber(ARGV[5])
if preferred >= 0 then
  local got = take(preferred)
  if got then return got end
end
for i = 0, tonumber(ARGV[4]) do
  local got = take(i)
  if got then return got end
end
return {-1, '0'}
"""

_RAISE_FLOOR = """
local current = redis.call('GET', KEYS[2])
if not current or tonumber(current) < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[3])
end
"""

# 1: renewed; 0: another token holds it; -1: no key (Redis lost it, or it expired)
_RENEW = (
    """
local holder = redis.call('GET', KEYS[1])
if not holder then return -1 end
if holder ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
    + _RAISE_FLOOR
    + "return 1\n"
)

# Still the holder, the node knows exactly what it issued: the floor becomes its last id's
# timestamp + 1, down from the renewals' wall clock + ttl (the next holder, a restart of the
# same node say, must not issue ids a ttl ahead of the clock: other nodes refuse a read
# pointer that far in the future).
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"""

_VALIDITY = 0.9


class LeaseLostError(RuntimeError):
    """The node id lease is not (or no longer) held: issuing ids could create duplicates."""


class NoFreeNodeIdError(RuntimeError):
    """All 1024 node ids are leased."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NodeLease:
    """A leased Snowflake node id and the generator that issues ids under it."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        key_prefix: str,
        ttl_ms: int = 15_000,
        renew_every_ms: int | None = None,
        auto_renew: bool = True,
        wall_clock_ms: Callable[[], int] = _wall_clock_ms,
        monotonic: Callable[[], float] = time.monotonic,
        on_lost: Callable[[], None] | None = None,
        max_node: int = MAX_NODE,
    ) -> None:
        if ttl_ms < 10:
            raise ValueError("ttl_ms must be at least 10")
        self._redis = redis
        self._prefix = f"{key_prefix}snowflake:"
        self._ttl_ms = ttl_ms
        self._renew_every = (renew_every_ms or ttl_ms // 3) / 1000
        self._auto_renew = auto_renew
        self._wall = wall_clock_ms
        self._monotonic = monotonic
        self._on_lost = on_lost
        self._max_node = max_node
        self._token = secrets.token_hex(16)
        self._node: int | None = None
        self._generator: SnowflakeGenerator | None = None
        self._limit_ms = 0
        self._valid_until = 0.0
        self._lost: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    # -- state ---------------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        """The leased node id; `LeaseLostError` if none is held."""
        self.check()
        assert self._node is not None
        return self._node

    @property
    def held(self) -> bool:
        try:
            self.check()
        except LeaseLostError:
            return False
        return True

    def check(self) -> None:
        """Raise `LeaseLostError` unless the lease is held and locally still valid."""
        if self._lost is not None:
            raise LeaseLostError(self._lost)
        if self._node is None:
            raise LeaseLostError("no node id lease acquired")
        if self._monotonic() > self._valid_until:
            self._lose(f"node id {self._node} lease not renewed in time")
            raise LeaseLostError(self._lost or "lease lost")

    def next_id(self, now_ms: int) -> int:
        """Issue a Snowflake id at Unix ms ``now_ms`` under the lease (or raise)."""
        self.check()
        assert self._generator is not None
        if now_ms <= self._limit_ms:
            snowflake = self._generator.next_id(now_ms)
            if self._generator.last_ms <= self._limit_ms:
                return snowflake
        raise LeaseLostError("clock ahead of the recorded floor; waiting for a renewal")

    __call__ = next_id

    async def follow(self, snowflake: int) -> None:
        """Issue later ids above ``snowflake`` (another node's), raising the floor first when
        that takes the generator past it."""
        self.check()
        assert self._generator is not None
        self._generator.follow(snowflake)
        if self._generator.last_ms >= self._limit_ms:
            await self.renew()

    # -- Redis ---------------------------------------------------------------------------

    def _keys(self) -> list[str]:
        return [f"{self._prefix}node:{self._node}", f"{self._prefix}floor:{self._node}"]

    def _next_limit(self) -> int:
        last = self._generator.last_ms if self._generator is not None else 0
        return max(self._wall(), last) + self._ttl_ms

    async def acquire(self) -> int:
        """Lease the first free node id, start renewing, and return the id."""
        if self._node is not None:
            raise RuntimeError("lease already acquired")
        node = await self._take(-1)
        if self._auto_renew:
            self._task = asyncio.create_task(self._renew_loop(), name=f"node-lease-{node}")
        log.info("leased snowflake node id %d", node)
        return node

    async def _take(self, preferred: int) -> int:
        """Lease ``preferred`` if free, else the first free id; seed the generator above the
        id's recorded floor and above everything this lease issued before."""
        started = self._monotonic()
        reply = await self._acquire(
            keys=[f"{self._prefix}node:0"],
            args=[self._prefix, self._token, self._ttl_ms, self._max_node, preferred],
        )
        node, floor = int(reply[0]), int(_text(reply[1]))
        if node < 0:
            raise NoFreeNodeIdError(f"all {self._max_node + 1} node ids are leased")
        issued = self._generator.last_ms if self._generator is not None else 0
        self._node = node
        self._generator = SnowflakeGenerator(node, last_ms=max(floor, issued) or None)
        self._valid_until = started + self._ttl_ms * _VALIDITY / 1000
        self._limit_ms = 0
        self._lost = None
        await self.renew()  # records our floor before any id is issued
        return node

    async def retake(self) -> int:
        """After a loss (Redis lost the key, or it ran out while Redis was away, or another
        holder has it): lease again, the same id if it is free, and return the id."""
        lost, previous = self._lost, self._node
        if previous is None:
            raise RuntimeError("no lease acquired yet")
        node = await self._take(previous)
        log.warning("snowflake node id %d leased again (was %d: %s)", node, previous, lost)
        return node

    async def renew(self) -> None:
        """Extend the lease once; `LeaseLostError` if it is no longer ours."""
        self.check()
        started = self._monotonic()
        limit = self._next_limit()
        renewed = int(await self._renew(keys=self._keys(), args=[self._token, self._ttl_ms, limit]))
        if renewed == -1:
            self._lose(f"node id {self._node} lease gone from Redis (lost or expired)")
            raise LeaseLostError(self._lost or "lease lost")
        if renewed == 0:
            self._lose(f"node id {self._node} lease taken over")
            raise LeaseLostError(self._lost or "lease lost")
        self._valid_until = started + self._ttl_ms * _VALIDITY / 1000
        self._limit_ms = limit

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if self.held:
                    await self.renew()
            except LeaseLostError:
                log.error("snowflake node lease lost: %s; leasing again", self._lost)
            except Exception:
                log.warning("snowflake node lease renewal failed; retrying", exc_info=True)
            if not self.held:
                try:
                    await self.retake()
                except Exception:
                    log.warning("snowflake node id not leased again yet; retrying", exc_info=True)

    def _lose(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason
            if self._on_lost is not None:
                self._on_lost()

    async def release(self) -> None:
        """Stop renewing and give the node id back (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._node is None or self._lost is not None:
            return
        floor = self._next_limit() - self._ttl_ms + 1
        await self._release(keys=self._keys(), args=[self._token, self._ttl_ms, floor])
        self._lost = "lease released"

    async def __aenter__(self) -> NodeLease:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
