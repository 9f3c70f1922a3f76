"""Fixtures for chat tests: a real Redis client (keys under the per-test prefix) and a layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.chat.layer import ChatLayer
from gateway.chat.snowflake import SnowflakeGenerator
from tests.chat.fakes import InMemoryReader, ManualClock, RecordingPublisher


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def store() -> InMemoryReader:
    return InMemoryReader()


@pytest.fixture
def chat(
    redis: aioredis.Redis,
    redis_prefix: str,
    clock: ManualClock,
    publisher: RecordingPublisher,
    store: InMemoryReader,
) -> ChatLayer:
    return ChatLayer(
        redis=redis,
        key_prefix=redis_prefix,
        ids=SnowflakeGenerator(7),
        clock=clock,
        publish=publisher,
        store=store,
        recent_limit=5,
    )
