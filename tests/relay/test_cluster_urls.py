"""Several AMQP URLs (the nodes of a cluster): the relay connects to the first that answers and
moves to the next when its connection is lost.

One real broker plays two nodes here (``127.0.0.1`` and ``localhost`` reach the same one), and a
port nobody listens on plays a node that is down; tests/e2e/test_chaos_rabbit.py kills a real
node of a real two-node cluster.
"""

from __future__ import annotations

import pytest
from yarl import URL

from chatstate.amqp_urls import split_amqp_urls
from gateway.relay import RelaySettings
from gateway.settings import ConfigurationError, Settings, settings_from
from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink, close_connections, connections, eventually
from tests.support import rabbit
from tests.support.ports import free_port


def _urls(vhost: str) -> tuple[str, str, str]:
    """(a node that is down, node A, node B) of one vhost."""
    path = "/" + rabbit.quote(vhost)
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}{path}"
    return down, rabbit.amqp_url(vhost), f"amqp://guest:guest@localhost:{rabbit.AMQP_PORT}{path}"


def test_split_amqp_urls() -> None:
    assert split_amqp_urls("amqp://a/") == ("amqp://a/",)
    assert split_amqp_urls(" amqp://u:p,q@a:1/v , AMQPS://b/v,amqp://c ") == (
        "amqp://u:p,q@a:1/v",  # a comma in a password stays
        "AMQPS://b/v",
        "amqp://c",
    )
    for bad in ("", " , ", "http://a/", "amqp://", "a:5672", "amqp://a/,redis://b/"):
        with pytest.raises(ValueError, match="amqp-url"):
            split_amqp_urls(bad)
    with pytest.raises(ValueError, match=r"ftp://\.\.\.@b/"):  # no password in the error
        Settings(amqp_url="amqp://a/,ftp://user:secret@b/")
    with pytest.raises(ValueError, match="not an amqp"):
        RelaySettings(amqp_url="nonsense")
    assert RelaySettings(amqp_url="amqp://a/, amqp://b/").amqp_urls == ("amqp://a/", "amqp://b/")


def test_reconnect_max_delay_setting() -> None:
    env = {"STOMPGATE_AMQP_RECONNECT_MAX_DELAY": "1.5", "STOMPGATE_AMQP_URL": "amqp://a/,amqp://b/"}
    settings = settings_from({}, env)
    assert settings.amqp_reconnect_max_delay == 1.5
    assert settings_from({}, {}).amqp_reconnect_max_delay == 3.0
    for bad in ("0.4", "nan", "soon"):
        with pytest.raises((ConfigurationError, ValueError), match=r"(?i)amqp.reconnect.max.delay"):
            settings_from({}, {"STOMPGATE_AMQP_RECONNECT_MAX_DELAY": bad})


async def test_relay_skips_a_down_node_and_moves_on_when_its_node_is_lost(
    make_relay: RelayFactory, fresh_vhost: str
) -> None:
    down, node_a, node_b = _urls(fresh_vhost)
    lost: list[str] = []
    relay = await make_relay(amqp_url=f"{down},{node_a},{node_b}", on_connection_lost=lost.append)
    assert URL(relay.broker_url or "").host == "127.0.0.1"
    assert URL(relay.broker_url or "").port == rabbit.AMQP_PORT  # not the node that is down
    assert "guest@" not in (relay.broker_url or "") or ":***@" in (relay.broker_url or "")

    hosts = []
    for n in range(2):  # A -> B -> (down: skipped) -> A
        await eventually(lambda: connections(fresh_vhost), lambda c: len(c) == 2)
        close_connections(fresh_vhost)
        await eventually(lambda: len(lost), (n + 1).__le__, within=5)
        assert await relay.wait_ready(15)
        hosts.append(URL(relay.broker_url or "").host)
    assert hosts == ["localhost", "127.0.0.1"]

    # ...and the node works where it landed: a topic round trip through its fan-out queue.
    sink = RecordingSink("s")
    await relay.subscribe(sink, "s", "/topic/room.cluster", "auto", {})
    await relay.publish(RecordingSink("p"), "/topic/room.cluster", [], b"hello")
    assert (await sink.wait_for(1))[0].body == b"hello"
