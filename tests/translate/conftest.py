from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support import rabbit
from tests.translate.apertium_proc import ApertiumProcess
from tests.translate.cases import CASES, Case
from tests.translate.fakes import FakeService


@pytest.fixture(scope="session")
def apertium_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private apertium-apy for this test run."""
    server = ApertiumProcess()
    log: Path = tmp_path_factory.mktemp("apertium") / "apertium-apy.log"
    try:
        server.start(log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


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
