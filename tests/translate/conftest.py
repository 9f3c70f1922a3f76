from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support import rabbit
from tests.translate.cases import CASES, Case
from tests.translate.fakes import FakeService


@pytest.fixture
def vhost_url(fresh_vhost: str) -> str:
    return rabbit.amqp_url(fresh_vhost)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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


@pytest.fixture(params=CASES, ids=str)
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Case, FakeService]]:
    """Each HTTP provider's case with its fake running."""
    case: Case = request.param
    fake = case.fake()
    await fake.start()
    try:
        yield case, fake
    finally:
        await fake.close()
