"""Which messages left the recent cache before the store had them: history never skips them.

History below the oldest cached message comes from the store, which the persist worker fills
asynchronously; when the worker lags (down, store outage, a backlog spread over several
workers) by more than the cache holds, messages trimmed out of the cache are not in the store
yet. Reading around them would be a silent gap, so the chat layer remembers them:

- ``{prefix}room:{room}:unstored`` (sorted set, score 0, members the 19-digit id, so it is
  in id order): every id the cache trim removed, and every message a takeover republished
  that the cache does not hold, until a read finds it in the store. Written in the same Lua
  step as the trim, so no message can leave the cache without being recorded.
- ``{prefix}room:{room}:inflight`` (hash id -> client key): posts reserved and not yet
  confirmed or aborted, i.e. whose publish is undecided.
- ``{prefix}room:{room}:rejected`` (sorted set like the unstored one, expiring 8 days after
  its last addition): ids the persist worker dead-lettered because the store holds another
  message under them (two issuers of one id). They will never be stored: a read treats them
  as dead posts.

The rule (`HistoryReader`): whenever a read uses the store, every unstored id within the
range of the page it returns must be in the page (found in the store, or in the cache). Ids
the store returned are proven stored and dropped from the set. A missing id raises
`StoreBehindError` unless its post is dead: never confirmed and no longer able to be (its
pending reservation expired or was replaced), or rejected by the persist worker; then it is
dropped. A post whose publish
failed is removed by its abort. Nothing is inferred from id order, so the rule holds however
the store gets filled (several workers, redeliveries, a takeover republishing an old post).

It does not cover: a post whose first attempt reached the broker but never confirmed and
whose sender did not retry within the pending TTL (then it counts as dead, as for every other
purpose); and a room idle for the recent TTL, whose cache and unstored set both expire (the
store is assumed to have caught up by then).

The set holds one id per message the store has not been seen to have. Reads prune it, and so
does the chat layer in the background every ``prune_every`` additions (`ChatLayer`), so in
steady state it stays small; during a store outage it grows by one short member per message.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat import lua
from gateway.chat.recent import as_bytes, id_key


class UnstoredSet:
    """Reads and pruning of the unstored set (the writes live in `gateway.chat.post_ledger`)."""

    def __init__(self, redis: aioredis.Redis, keys: ChatKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._resolve = redis.register_script(lua.RESOLVE_UNSTORED)

    async def after(self, room: str, after_id: int, limit: int) -> list[int]:
        """The lowest ``limit`` unstored ids above ``after_id``, ascending."""
        members = await self._redis.zrangebylex(
            self._keys.unstored(room), b"(" + id_key(after_id), b"+", start=0, num=limit
        )
        return [int(as_bytes(m)) for m in members]

    async def before(self, room: str, before_id: int | None, limit: int) -> list[int]:
        """The highest ``limit`` unstored ids below ``before_id`` (or overall), descending."""
        high = b"+" if before_id is None else b"(" + id_key(before_id)
        members = await self._redis.zrevrangebylex(
            self._keys.unstored(room), high, b"-", start=0, num=limit
        )
        return [int(as_bytes(m)) for m in members]

    async def oldest(self, room: str, count: int) -> list[int]:
        members = await self._redis.zrange(self._keys.unstored(room), 0, count - 1)
        return [int(as_bytes(m)) for m in members]

    async def count(self, room: str) -> int:
        return int(await self._redis.zcard(self._keys.unstored(room)))

    async def stored(self, room: str, ids: Sequence[int]) -> None:
        """``ids`` were read from the store: nothing to wait for any more."""
        if not ids:
            return
        members = [id_key(i) for i in ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._keys.unstored(room), *members)
            pipe.hdel(self._keys.inflight(room), *members)
            await pipe.execute()

    async def outstanding(self, room: str, missing: Sequence[int]) -> list[int]:
        """Of ``missing`` (unstored ids the store did not return), those to wait for; dead
        posts (never confirmed, and no longer able to be; or rejected by the persist worker
        as id conflicts, ``{prefix}room:{room}:rejected``) leave the set, are not returned,
        and become holes of the room's ordinals."""
        if not missing:
            return []
        result = await self._resolve(
            keys=[
                self._keys.unstored(room),
                self._keys.inflight(room),
                self._keys.holes(room),
                self._keys.rejected(room),
            ],
            args=[id_key(i) for i in missing],
        )
        return [int(as_bytes(m)) for m in result]
