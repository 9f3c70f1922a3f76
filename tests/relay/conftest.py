"""Fixtures for relay tests: Relays on a fresh vhost, closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.relay import Relay, RelaySettings
from tests.support import rabbit

RelayFactory = Callable[..., Awaitable[Relay]]


@pytest.fixture
async def make_relay(fresh_vhost: str) -> AsyncIterator[RelayFactory]:
    """Start a Relay on the test's own vhost; ``await make_relay(node_id=..., **settings)``."""
    relays: list[Relay] = []
    counter = iter(range(1, 1000))

    async def factory(**overrides: Any) -> Relay:
        options: dict[str, Any] = {
            "amqp_url": rabbit.amqp_url(fresh_vhost),
            "node_id": f"node-{next(counter)}",
            "reconnect_min_delay": 0.2,
            "reconnect_max_delay": 1.0,
            "confirm_timeout": 5.0,
        }
        on_lost = overrides.pop("on_connection_lost", None)
        options.update(overrides)
        relay = Relay(RelaySettings(**options), on_connection_lost=on_lost)
        relays.append(relay)
        await relay.start()
        assert relay.ready, "relay did not connect to RabbitMQ"
        return relay

    yield factory
    for relay in relays:
        await relay.close()
