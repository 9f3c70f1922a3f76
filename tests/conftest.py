"""Shared fixtures: a private RabbitMQ vhost and a Redis key prefix per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import rabbit


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost private to this test run, deleted afterwards."""
    vhost = rabbit.create_vhost()
    yield vhost
    rabbit.delete_vhost(vhost)


@pytest.fixture(scope="session")
def amqp_url(rabbit_vhost: str) -> str:
    return rabbit.amqp_url(rabbit_vhost)


@pytest.fixture
def fresh_vhost() -> Iterator[str]:
    """A vhost for one test that must not see anything another test left behind."""
    vhost = rabbit.create_vhost()
    yield vhost
    rabbit.delete_vhost(vhost)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("STOMPGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix private to one test; tests delete their keys by this prefix."""
    return f"stompgate-test:{uuid.uuid4().hex[:12]}:"
