"""Fixtures that run real gateway processes against the test run's RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway_proc import GatewayProcess


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-logs")


@pytest.fixture(scope="module")
def gateway(amqp_url: str, log_dir: Path) -> Iterator[GatewayProcess]:
    """One gateway node (``--auth dev``: guest, alice, bob) for a test module."""
    node = GatewayProcess(amqp_url=amqp_url, node_id="gw-a")
    node.start(log_dir)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def gateway_b(amqp_url: str, log_dir: Path) -> Iterator[GatewayProcess]:
    """A second node on the same vhost."""
    node = GatewayProcess(amqp_url=amqp_url, node_id="gw-b")
    node.start(log_dir)
    yield node
    node.stop()
