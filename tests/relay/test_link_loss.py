"""The node hears of a lost broker at once, not after the lost connections finished closing.

Closing an aiormq connection the broker reset (a node killed -9) can take aiormq its whole
5 s timeout; the link used to await that before telling the node and reconnecting, so every
recovery took 5 s longer (found by tests/e2e/test_chaos_rabbit.py::test_cluster_node_killed).
"""

from __future__ import annotations

from typing import Any

import pytest

import gateway.relay.link as link
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import close_connections, connections, eventually


async def test_the_node_is_told_before_the_lost_connections_are_closed(
    make_relay: RelayFactory, fresh_vhost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    close_pair = link._close_pair

    async def recording_close_pair(*pair: Any) -> None:
        await close_pair(*pair)
        events.append("closed")

    monkeypatch.setattr(link, "_close_pair", recording_close_pair)
    relay = await make_relay(on_connection_lost=lambda reason: events.append("told"))
    await eventually(lambda: connections(fresh_vhost), lambda c: len(c) == 2)
    close_connections(fresh_vhost)
    await eventually(lambda: list(events), lambda e: "closed" in e, within=10, every=0.05)
    assert events[:2] == ["told", "closed"]
    assert await relay.wait_ready(10)
