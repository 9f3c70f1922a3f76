from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.chat.node_lease import LeaseLostError, NodeLease, NoFreeNodeIdError
from gateway.chat.snowflake import EPOCH_MS, parse

NOW = EPOCH_MS + 10_000_000


class Clock:
    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 100.0

    def wall_ms(self) -> int:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def lease(
    redis: aioredis.Redis, prefix: str, clock: Clock | None = None, **kwargs: object
) -> NodeLease:
    clock = clock or Clock()
    return NodeLease(
        redis,
        key_prefix=prefix,
        wall_clock_ms=clock.wall_ms,
        monotonic=clock.monotonic,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_two_leases_never_share_an_id(redis: aioredis.Redis, redis_prefix: str) -> None:
    leases = [lease(redis, redis_prefix, auto_renew=False) for _ in range(5)]
    ids = [await one.acquire() for one in leases]
    assert sorted(ids) == [0, 1, 2, 3, 4]
    for one in leases:
        await one.release()


async def test_concurrent_acquires_get_distinct_ids(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    leases = [lease(redis, redis_prefix, auto_renew=False) for _ in range(20)]
    ids = await asyncio.gather(*(one.acquire() for one in leases))
    assert len(set(ids)) == 20
    await asyncio.gather(*(one.release() for one in leases))


async def test_release_frees_the_id(redis: aioredis.Redis, redis_prefix: str) -> None:
    first = lease(redis, redis_prefix, auto_renew=False)
    assert await first.acquire() == 0
    await first.release()
    with pytest.raises(LeaseLostError):
        first.next_id(NOW)
    second = lease(redis, redis_prefix, auto_renew=False)
    assert await second.acquire() == 0
    await second.release()


async def test_all_taken(redis: aioredis.Redis, redis_prefix: str) -> None:
    leases = [lease(redis, redis_prefix, auto_renew=False, max_node=1) for _ in range(2)]
    for one in leases:
        await one.acquire()
    with pytest.raises(NoFreeNodeIdError):
        await lease(redis, redis_prefix, auto_renew=False, max_node=1).acquire()
    for one in leases:
        await one.release()


async def test_expiry_lets_another_take_it_and_the_old_holder_stops(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    clock = Clock()
    old = lease(redis, redis_prefix, clock, ttl_ms=200, auto_renew=False)
    assert await old.acquire() == 0
    old_id = old.next_id(NOW)
    await asyncio.sleep(0.3)  # the key expires in Redis
    clock.mono += 0.3
    new = lease(redis, redis_prefix, auto_renew=False)
    assert await new.acquire() == 0
    with pytest.raises(LeaseLostError):
        old.next_id(NOW)  # local validity ran out
    with pytest.raises(LeaseLostError):
        await old.renew()
    # The new holder starts after the floor the old one recorded (NOW + ttl).
    assert new.next_id(NOW) > old_id
    assert parse(new.next_id(NOW)).ts_ms > NOW + 200
    await new.release()
    await old.release()


async def test_a_released_id_is_taken_up_at_the_clock_not_a_ttl_ahead(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    """A node that restarts (release, then acquire) issues ids at the wall clock: ids a ttl
    ahead would be refused as read pointers by every other node for that long."""
    clock = Clock()
    old = lease(redis, redis_prefix, clock, ttl_ms=15_000, auto_renew=False)
    assert await old.acquire() == 0
    old_id = old.next_id(NOW)
    await old.release()
    clock.wall = NOW + 5
    new = lease(redis, redis_prefix, clock, ttl_ms=15_000, auto_renew=False)
    assert await new.acquire() == 0
    new_id = new.next_id(NOW + 5)
    assert new_id > old_id
    assert parse(new_id).ts_ms == NOW + 5
    await new.release()


async def test_renewal_finding_another_token_loses_the_lease(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    lost: list[bool] = []
    one = lease(redis, redis_prefix, auto_renew=False, on_lost=lambda: lost.append(True))
    node = await one.acquire()
    await redis.set(f"{redis_prefix}snowflake:node:{node}", "someone-else")
    with pytest.raises(LeaseLostError):
        await one.renew()
    assert lost == [True]
    with pytest.raises(LeaseLostError):
        one.next_id(NOW)
    await one.release()  # not ours any more: must not delete the other holder's key
    assert await redis.get(f"{redis_prefix}snowflake:node:{node}") == b"someone-else"


async def test_background_renewal_keeps_the_lease(redis: aioredis.Redis, redis_prefix: str) -> None:
    async with NodeLease(redis, key_prefix=redis_prefix, ttl_ms=150) as one:
        await asyncio.sleep(0.4)  # > 2 ttl: only renewals keep it alive
        assert one.held
        assert parse(one.next_id(NOW)).node == one.node_id
        ttl = await redis.pttl(f"{redis_prefix}snowflake:node:{one.node_id}")
        assert 0 < ttl <= 150
    assert await redis.exists(f"{redis_prefix}snowflake:node:0") == 0


async def test_a_lease_redis_lost_is_taken_again_and_ids_keep_rising(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    """Redis restarted empty (or failed over without the key): the next renewal finds no
    key, gives the lease up and takes it again (the same id, free), above its own ids."""
    clock = Clock()
    one = lease(redis, redis_prefix, clock, auto_renew=False)
    node = await one.acquire()
    before = one.next_id(NOW + 50)
    await redis.delete(
        f"{redis_prefix}snowflake:node:{node}", f"{redis_prefix}snowflake:floor:{node}"
    )
    with pytest.raises(LeaseLostError):
        await one.renew()
    with pytest.raises(LeaseLostError):
        one.next_id(NOW + 60)  # refused until it is leased again
    assert await one.retake() == node
    assert await redis.get(f"{redis_prefix}snowflake:node:{node}") is not None
    assert one.next_id(NOW) > before  # the wall clock went back: still above its own ids
    await one.release()


async def test_a_lease_another_holder_took_is_retaken_under_a_free_id(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    one = lease(redis, redis_prefix, auto_renew=False)
    node = await one.acquire()
    before = one.next_id(NOW)
    await redis.set(f"{redis_prefix}snowflake:node:{node}", "someone-else")
    with pytest.raises(LeaseLostError):
        await one.renew()
    assert await one.retake() != node
    assert one.next_id(NOW) > before
    assert await redis.get(f"{redis_prefix}snowflake:node:{node}") == b"someone-else"
    await one.release()


async def test_background_renewal_takes_a_lost_lease_again(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    one = NodeLease(redis, key_prefix=redis_prefix, ttl_ms=150)
    node = await one.acquire()
    before = one.next_id(EPOCH_MS + 10_000_000_000)
    await redis.delete(f"{redis_prefix}snowflake:node:{node}")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if one.held and await redis.get(f"{redis_prefix}snowflake:node:{node}") is not None:
            break
    assert one.held
    assert one.next_id(EPOCH_MS + 10_000_000_000) > before
    await one.release()
    assert await redis.exists(f"{redis_prefix}snowflake:node:{node}") == 0


async def test_clock_far_ahead_of_recorded_floor_is_refused(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    clock = Clock()
    one = lease(redis, redis_prefix, clock, ttl_ms=1000, auto_renew=False)
    await one.acquire()
    one.next_id(NOW + 999)
    with pytest.raises(LeaseLostError, match="floor"):
        one.next_id(NOW + 5_000)  # a forward jump beyond what the lease recorded
    clock.wall = NOW + 5_000
    await one.renew()
    assert parse(one.next_id(NOW + 5_000)).ts_ms == NOW + 5_000
    await one.release()
