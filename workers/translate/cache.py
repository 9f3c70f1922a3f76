"""Translations cached in Redis, keyed by (text hash, source, target), with a TTL.

Key: `{prefix}translate:{source}:{target}:{sha256 of the UTF-8 text, hex}`; value: JSON
`{"text": ..., "provider": ...}`. Whichever provider made a translation, it serves every later
request for the same text and pair until it expires (switching providers does not flush it).

The cache only saves work: when Redis fails, a read is a miss and a write is skipped (logged),
so a Redis outage slows translation down but never stops it.

At most `concurrency` commands are in flight at once (the others wait their turn): a burst of
500 messages must not ask the Redis client for 500 connections (redis-py's pool refuses past
its `max_connections`, 100 by default, and every refusal would be a miss).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from workers.translate.providers import Translation

log = logging.getLogger("stompgate.workers.translate")


class TranslationCache:
    def __init__(
        self, client: aioredis.Redis, *, prefix: str, ttl: float, concurrency: int = 16
    ) -> None:
        if ttl <= 0:
            raise ValueError("cache ttl must be > 0 seconds")
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl * 1000))
        self._slots = asyncio.Semaphore(concurrency)

    def key(self, text: str, source: str, target: str) -> str:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"{self.prefix}translate:{source}:{target}:{digest}"

    async def get_many(
        self, texts: Sequence[str], source: str, target: str
    ) -> list[Translation | None]:
        """The cached translation of each text, or None (also when Redis fails)."""
        if not texts:
            return []
        try:
            async with self._slots:
                values = await self.client.mget([self.key(t, source, target) for t in texts])
        except (RedisError, OSError) as exc:
            log.warning("translation cache read failed (treated as a miss): %s", exc)
            return [None] * len(texts)
        return [_decode(v, source, target) for v in values]

    async def put_many(self, originals: Sequence[str], translations: Sequence[Translation]) -> None:
        """Cache `translations[i]` as the translation of `originals[i]`."""
        if not originals:
            return
        try:
            async with self._slots, self.client.pipeline(transaction=False) as pipe:
                for text, done in zip(originals, translations, strict=True):
                    value = orjson.dumps({"text": done.text, "provider": done.provider})
                    pipe.set(self.key(text, done.source, done.target), value, px=self.ttl_ms)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("translation cache write failed (not cached): %s", exc)


def _decode(value: bytes | str | None, source: str, target: str) -> Translation | None:
    if value is None:
        return None
    try:
        data = orjson.loads(value)
        return Translation(str(data["text"]), source, target, str(data["provider"]), cached=True)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None  # not ours, or from an older layout: a miss
