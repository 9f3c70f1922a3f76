"""Shared fixtures: a private RabbitMQ vhost and a Redis key prefix per test run; a private
apertium-apy (the offline translation provider) for the run, started when first asked for."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chatstate.deployment import DEFAULT_DEPLOYMENT, default_redis_prefix, namespace_key
from tests.support import rabbit
from tests.translate.apertium_proc import ApertiumProcess


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


@pytest.fixture(scope="session")
def lease_namespace_token(redis_url: str) -> str:
    """The default deployment's lease-namespace token (`chatstate.deployment`) in the test
    Redis, created if absent."""
    client = redis.Redis.from_url(redis_url)
    try:
        key = namespace_key(default_redis_prefix(DEFAULT_DEPLOYMENT))
        client.set(key, secrets.token_hex(16), nx=True)
        value = client.get(key)
        assert isinstance(value, bytes)
        return value.decode()
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str, lease_namespace_token: str) -> str:
    """A key prefix private to one test; tests delete their keys by this prefix.

    The tests of a run take turns on one vhost with a prefix each: the start-up check
    (`chatstate.deployment`) would see one lease namespace per test and refuse all but the
    first. They never run two at once, so each prefix is declared part of the default
    deployment's namespace (its token, expiring in an hour if the test leaves it behind).
    Tests of the check itself use prefixes of their own."""
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(namespace_key(prefix), lease_namespace_token, ex=3600)
    finally:
        client.close()
    return prefix


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
