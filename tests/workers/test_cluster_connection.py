"""A worker given several AMQP URLs (the nodes of a cluster) connects to the first that
answers and, when its connection is lost, reconnects to the next one and consumes again.

One real broker plays two nodes (``127.0.0.1`` and ``localhost`` reach the same one) and a port
nobody listens on plays a node that is down; tests/e2e/test_chaos_rabbit.py kills a real node
of a real two-node cluster. This also pins how ClusterConnection hooks into aio-pika's
reconnect loop (see workers/framework/connection.py), and that a connection loss logs no
ERROR line from a robust channel's failed reopen (aio-pika's known, harmless one: filtered).
"""

from __future__ import annotations

import logging

import aiormq
import pytest

from tests.relay.helpers import close_connections, connections, eventually
from tests.support import rabbit
from tests.support.ports import free_port
from workers.framework import Delivery, WorkerApp
from workers.framework.connection import ChannelRestoreNoise, ClusterConnection
from workers.settings import WorkerSettings

from .amqp import channel, publish, wait_for


def _urls(vhost: str) -> tuple[str, str, str]:
    """(a node that is down, node A, node B) of one vhost."""
    path = "/" + rabbit.quote(vhost)
    return (
        f"amqp://guest:guest@127.0.0.1:{free_port()}{path}",
        rabbit.amqp_url(vhost),
        f"amqp://guest:guest@localhost:{rabbit.AMQP_PORT}{path}",
    )


def test_settings_read_and_check_the_url_list() -> None:
    env = {"STOMPGATE_AMQP_URL": "amqp://a/, amqp://b/"}
    assert WorkerSettings.from_env(env).amqp_url == "amqp://a/, amqp://b/"
    with pytest.raises(ValueError, match="STOMPGATE_AMQP_URL"):
        WorkerSettings.from_env({"STOMPGATE_AMQP_URL": "amqp://a/,http://b/"})
    assert WorkerSettings.from_env({}).reconnect_interval == 1.0
    env = {"STOMPGATE_WORKER_RECONNECT_INTERVAL": "0.25"}
    assert WorkerSettings.from_env(env).reconnect_interval == 0.25
    with pytest.raises(ValueError, match="STOMPGATE_WORKER_RECONNECT_INTERVAL"):
        WorkerSettings.from_env({"STOMPGATE_WORKER_RECONNECT_INTERVAL": "0"})


async def test_worker_skips_a_down_node_and_moves_on_when_its_node_is_lost(
    fresh_vhost: str, apps: list[WorkerApp]
) -> None:
    down, node_a, node_b = _urls(fresh_vhost)
    app = WorkerApp("cluster", amqp_url=f"{down},{node_a},{node_b}")
    app.configure(WorkerSettings.from_env({"STOMPGATE_WORKER_RECONNECT_INTERVAL": "0.2"}))
    apps.append(app)
    seen: list[bytes] = []

    @app.consumer("room.*", queue="cluster.q")
    async def handle(msg: Delivery[bytes]) -> None:
        seen.append(msg.body)

    await app.start()
    connection = app.connection
    assert isinstance(connection, ClusterConnection)
    assert (connection.url.host, connection.url.port) == ("127.0.0.1", rabbit.AMQP_PORT)
    assert connection.reconnect_interval == 0.2

    hosts = []
    for n in range(2):  # A -> B -> (down: skipped) -> A
        await eventually(lambda: connections(fresh_vhost), lambda c: len(c) >= 1)
        close_connections(fresh_vhost)
        before = connection.url.host

        def moved(before: str | None = before) -> bool:
            return connection.url.host != before and app.healthy

        await wait_for(moved, within=15, what=f"reconnect {n + 1} to another node")
        hosts.append(connection.url.host)
        async with channel(rabbit.amqp_url(fresh_vhost)) as ch:  # consuming again there
            await publish(ch, "room.r", b"after %d" % n)
        expected = b"after %d" % n

        def consumed(expected: bytes = expected) -> bool:
            return expected in seen

        await wait_for(consumed, within=15, what="consumed")
    assert hosts == ["localhost", "127.0.0.1"]


async def test_a_lost_connection_logs_no_error_from_a_channel_s_reopen(
    fresh_vhost: str, apps: list[WorkerApp], caplog: pytest.LogCaptureFixture
) -> None:
    app = WorkerApp("noise", amqp_url=rabbit.amqp_url(fresh_vhost))
    app.configure(WorkerSettings.from_env({"STOMPGATE_WORKER_RECONNECT_INTERVAL": "0.2"}))
    apps.append(app)
    seen: list[bytes] = []

    @app.consumer("room.*", queue="noise.q")
    async def handle(msg: Delivery[bytes]) -> None:
        seen.append(msg.body)

    await app.start()
    caplog.set_level(logging.ERROR)
    for n in range(2):
        [before] = await eventually(lambda: connections(fresh_vhost), lambda c: len(c) == 1)
        assert close_connections(fresh_vhost) == 1

        def back(before: str = before["name"]) -> bool:
            return app.healthy and any(c["name"] != before for c in connections(fresh_vhost))

        await wait_for(back, within=15, what=f"reconnect {n + 1}")
        async with channel(rabbit.amqp_url(fresh_vhost)) as ch:  # consuming again
            await publish(ch, "room.r", b"after %d" % n)
        expected = b"after %d" % n

        def consumed(expected: bytes = expected) -> bool:
            return expected in seen

        await wait_for(consumed, within=15, what="consumed")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [line for line in errors if "RobustChannel._on_close" in line], errors
    # the loss itself is still logged (aiormq's line), so the capture did see ERRORs
    assert any("Unexpected connection close" in line for line in errors), errors


class _Callback:
    """Stands in for aio-pika's OneShotCallback: the filter reads its ``callback``."""

    def __init__(self, callback: object) -> None:
        self.callback = callback


class RobustChannel:  # named as aio-pika's, for the bound method's qualified name
    async def _on_close(self) -> None: ...

    async def other(self) -> None: ...


def _record(callback: object, exc: Exception) -> logging.LogRecord:
    return logging.LogRecord(
        "aio_pika.tools",
        logging.ERROR,
        __file__,
        1,
        "Callback %r error: %s: %s",
        (_Callback(callback), type(exc).__name__, exc),
        None,
    )


def test_the_filter_drops_only_a_channel_s_reopen_on_a_lost_connection() -> None:
    noise = ChannelRestoreNoise()
    reopen = RobustChannel()._on_close
    assert not noise.filter(
        _record(reopen, RuntimeError('<Connection: "amqp://h/" at 0x1> closed'))
    )
    assert not noise.filter(
        _record(
            reopen, aiormq.exceptions.ChannelInvalidStateError("No active transport in channel")
        )
    )
    assert noise.filter(_record(reopen, RuntimeError("something else")))
    assert noise.filter(_record(reopen, ValueError("x closed")))
    assert noise.filter(_record(RobustChannel().other, RuntimeError("<Connection> closed")))
    other = logging.LogRecord("aio_pika.tools", logging.ERROR, __file__, 1, "plain", None, None)
    assert noise.filter(other)
