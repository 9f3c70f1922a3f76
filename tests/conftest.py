"""Shared fixtures: a private RabbitMQ vhost and a Redis key prefix per test run; a private
apertium-apy (the offline translation provider) for the run, started when first asked for;
and a check that the run left nothing new on RabbitMQ's default vhost "/"."""

from __future__ import annotations

import os
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatstate.deployment import REGISTRY_PREFIX
from tests.support import rabbit
from tests.support.gateway_proc import WS_IMPLS
from tests.support.namespace import share_default_namespace
from tests.translate.apertium_proc import ApertiumProcess


def _default_vhost_registries() -> set[str] | None:
    """The deployment registry streams on "/" of the shared RabbitMQ (chatstate/deployment.py:
    ``<deployment>.registry`` and ``stompgate.registry.exchange.<exchange>``); None when its
    management API does not answer (a run of unit tests without the services). Only these:
    a `make up` started meanwhile declares its worker queues on "/" and must not fail the run."""
    try:
        names = {str(queue["name"]) for queue in rabbit.list_queues("/")}
    except (OSError, urllib.error.URLError):
        return None
    return {n for n in names if n.endswith(".registry") or n.startswith(REGISTRY_PREFIX)}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_on_the_default_vhost() -> Iterator[None]:
    """Every test declares on a vhost of its own, so a run leaves no registry stream on "/"
    (where the default deployment of a `make up` keeps its own, chatstate/deployment.py): one
    there after the run that was not there before fails the run's last teardown."""
    before = _default_vhost_registries()
    yield
    after = _default_vhost_registries()
    if before is None or after is None:
        return
    new = sorted(after - before)
    assert not new, (
        f"the test run left registry streams on RabbitMQ's default vhost '/': {new} (a test"
        " on '/' instead of a vhost of its own, or a first `make up` started meanwhile)"
    )


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


@pytest.fixture(scope="module", params=WS_IMPLS)
def ws_impl(request: pytest.FixtureRequest) -> str:
    """Each WebSocket path in turn (``--ws-impl``): a test or fixture asking for it runs over
    both, so the two keep the same behaviour."""
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("STOMPGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix(redis_url: str) -> str:
    """A key prefix private to one test; tests delete their keys by this prefix. Part of the
    default deployment's lease namespace (`tests.support.namespace`)."""
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    share_default_namespace(redis_url, prefix)
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
