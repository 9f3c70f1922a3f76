"""Fixtures for end-to-end tests: gateway processes and a persist worker on one fresh vhost,
one SQLite store file and one private Redis prefix per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.procs import WorkerProcess
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess


@pytest.fixture
def e2e_vhost_url(fresh_vhost: str) -> str:
    return rabbit.amqp_url(fresh_vhost)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "messages.sqlite3"


@pytest.fixture
def store_url(store_path: Path) -> str:
    return f"sqlite:///{store_path}"  # an absolute path: sqlite:////tmp/...


@pytest.fixture
def redis_keys(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A Redis client; every key under the test's prefix is deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def chat_env(redis_url: str, redis_prefix: str, store_url: str) -> dict[str, str]:
    """What every gateway of a test shares: Redis (private prefix) and the store."""
    return {
        "STOMPGATE_REDIS_URL": redis_url,
        "STOMPGATE_REDIS_PREFIX": redis_prefix,
        "STOMPGATE_STORE": store_url,
        "STOMPGATE_LOG_LEVEL": "INFO",
    }


GatewayFactory = Callable[..., GatewayProcess]


@pytest.fixture
def start_gateway(
    e2e_vhost_url: str,
    chat_env: dict[str, str],
    log_dir: Path,
    redis_keys: redis.Redis,
) -> Iterator[GatewayFactory]:
    """``start_gateway("gw-a", "--flag", "value", STOMPGATE_X="1")``: a running node."""
    started: list[GatewayProcess] = []

    def start(node_id: str, *extra_args: str, **env: str) -> GatewayProcess:
        node = GatewayProcess(
            amqp_url=e2e_vhost_url,
            node_id=node_id,
            extra_args=extra_args,
            env={**chat_env, **env},
        )
        node.start(log_dir)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def worker(e2e_vhost_url: str, store_url: str, log_dir: Path) -> Iterator[WorkerProcess]:
    """The persist worker, consuming (its queue declared and bound) before the test starts."""
    proc = WorkerProcess(amqp_url=e2e_vhost_url, store_url=store_url)
    proc.start(log_dir)
    yield proc
    proc.stop()
