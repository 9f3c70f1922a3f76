from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import rabbit
from workers.framework import WorkerApp


@pytest.fixture
def vhost_url(fresh_vhost: str) -> str:
    return rabbit.amqp_url(fresh_vhost)


@pytest.fixture
async def apps() -> AsyncIterator[list[WorkerApp]]:
    """Worker apps a test starts; aborted at the end if the test left them running."""
    started: list[WorkerApp] = []
    yield started
    for app in started:
        await app.abort()


@pytest.fixture
def no_schemas_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    import schemas

    monkeypatch.delattr(schemas, "validate", raising=False)
