"""The Redis steps of presence (gateway/presence/lua.py) against the real Redis.

Times here are Redis's own: a test waits for a grace or a lease to pass and then asserts what
must have happened by then, or asserts what cannot happen before it (a lower bound the rule
itself guarantees); nothing asserts how fast anything ran.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from gateway.presence.store import PresenceChange, PresenceStore
from tests.presence.conftest import GRACE_MS, LEASE_MS

A, B = "node-a", "node-b"


async def redis_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def sweep_until(
    store: PresenceStore, token: str, *, within: float = 10.0
) -> list[PresenceChange]:
    """Renew ``token`` and sweep until a step publishes something."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = await store.sync(token, sweep=1000)
        assert got is not None
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing published within {within} s")


async def test_a_first_session_is_online_at_once_and_a_second_node_adds_nothing(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    assert await store.sync(A, full=True) == []
    assert await store.sync(B, full=True) == []
    before = await redis_ms(redis)
    [change] = await store.sync(A, joins=["alice"]) or []
    assert (change.user, change.status) == ("alice", "online")
    assert change.at >= before
    assert change.last_seen == change.at
    assert await store.sync(B, joins=["alice"]) == []  # on two nodes: still one user online
    assert await store.sync(A, leaves=["alice"], sweep=1000) == []  # live on B
    [alice] = await store.query(["alice"])
    assert alice.live


async def test_going_offline_waits_for_the_grace_and_a_return_within_it_shows_nothing(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    await store.sync(A, full=True)
    await store.sync(A, joins=["alice", "bob"])
    await asyncio.sleep(GRACE_MS / 1000)  # past the grace since the online changes
    left = await redis_ms(redis)
    assert await store.sync(A, leaves=["alice", "bob"], sweep=1000) == []
    assert await store.sync(A, joins=["alice"], sweep=1000) == []  # a reload: no change
    [change] = await sweep_until(store, A)
    assert (change.user, change.status) == ("bob", "offline")
    assert change.at >= left + GRACE_MS  # never before the grace
    assert left <= change.last_seen < change.at
    await asyncio.sleep(GRACE_MS / 1000)
    assert await store.sync(A, sweep=1000) == []  # alice never went offline


async def test_at_most_one_change_per_user_per_grace(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    await store.sync(A, full=True)
    [online] = await store.sync(A, joins=["alice"]) or []
    await store.sync(A, leaves=["alice"])
    [offline] = await sweep_until(store, A)
    assert offline.status == "offline"
    assert offline.at >= online.at + GRACE_MS
    assert await store.sync(A, joins=["alice"]) == []  # back at once: told a grace later
    [again] = await sweep_until(store, A)
    assert again.status == "online"
    assert again.at >= offline.at + GRACE_MS


async def test_a_dead_node_s_users_go_offline_a_grace_after_its_last_renewal(
    store: PresenceStore, redis: aioredis.Redis, redis_prefix: str
) -> None:
    await store.sync(A, full=True)
    await store.sync(B, full=True)
    await store.sync(A, joins=["alice"])
    await store.sync(B, joins=["bob"])
    await asyncio.sleep(GRACE_MS / 1000)
    last_renewal = await redis_ms(redis)
    await store.sync(A)  # A's last sign of life
    # A dies. B keeps renewing and sweeping: the lease lapses, A's users are dropped...
    await asyncio.sleep(LEASE_MS / 1000)
    [change] = await sweep_until(store, B)
    assert (change.user, change.status) == ("alice", "offline")
    # ... and they go offline a grace after A's last renewal, not a grace after it was found
    assert change.at >= last_renewal + GRACE_MS
    assert change.last_seen >= last_renewal
    assert await redis.zscore(f"{redis_prefix}presence:nodes", A) is None
    [bob] = await store.query(["bob"])
    assert bob.live


async def test_a_node_whose_lease_lapsed_is_told_to_send_all_its_users_again(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    await store.sync(A, full=True)
    await store.sync(B, full=True)
    await store.sync(A, joins=["alice", "carol"])
    await asyncio.sleep(LEASE_MS / 1000 * 1.5)  # A stalls
    assert await store.sync(B, sweep=1000) == []  # B drops A's users (still in their grace)
    [alice] = await store.query(["alice"])
    assert not alice.live
    assert await store.sync(A, joins=["dave"]) is None  # A: resync
    got = await store.sync(A, joins=["alice", "dave"], full=True) or []
    assert [(c.user, c.status) for c in got] == [("dave", "online")]  # alice never went off
    [alice, carol, dave] = await store.query(["alice", "carol", "dave"])
    assert alice.live
    assert dave.live
    assert not carol.live


async def test_invisible_users_appear_offline_to_others_but_not_to_themselves(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    await store.sync(A, full=True)
    await store.sync(A, joins=["alice"])
    before = await redis_ms(redis)
    assert await store.set_invisible("alice", True) == []  # told online less than a grace ago
    [alice] = await store.query(["alice"])
    assert alice.live
    assert alice.invisible_since is not None
    assert alice.invisible_since >= before
    assert alice.last_seen is not None
    hidden_since = min(alice.last_seen, alice.invisible_since)  # seen last before going away
    assert alice.seen_by("bob") == ("offline", hidden_since)
    assert alice.seen_by("alice") == ("online", alice.last_seen)
    [change] = await sweep_until(store, A)  # the rooms hear of it a grace after "online"
    assert (change.user, change.status) == ("alice", "offline")
    assert change.last_seen == hidden_since
    # Joining again on another node while invisible tells nobody.
    await store.sync(B, full=True)
    assert await store.sync(B, joins=["alice"]) == []
    await asyncio.sleep(GRACE_MS / 1000)
    assert await store.sync(A, sweep=1000) == []
    # Visible again: online (a grace after the last change has passed).
    [visible] = await store.set_invisible("alice", False)
    assert visible.status == "online"


async def test_a_query_of_users_never_seen(store: PresenceStore) -> None:
    [nobody] = await store.query(["nobody"])
    assert (nobody.live, nobody.invisible_since, nobody.last_seen) == (False, None, None)
    assert nobody.seen_by("x") == ("offline", None)
    assert await store.query([]) == []


async def test_retiring_a_node_hands_its_users_over_as_last_seen_now(
    store: PresenceStore, redis: aioredis.Redis
) -> None:
    await store.sync(A, full=True)
    await store.sync(B, full=True)
    await store.sync(A, joins=["alice"])
    await asyncio.sleep(GRACE_MS / 1000)
    retired = await redis_ms(redis)
    assert await store.retire(A) == []
    [change] = await sweep_until(store, B)
    assert (change.user, change.status) == ("alice", "offline")
    assert change.at >= retired + GRACE_MS
    assert change.last_seen >= retired
