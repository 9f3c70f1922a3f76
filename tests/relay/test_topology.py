"""The topology on the real broker: each refusal is one BrokerRefusedError with its code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiormq
import pytest
from aiormq.abc import AbstractConnection

from gateway.relay.errors import BrokerRefusedError, BrokerUnavailableError
from gateway.relay.planner import Binding, QueueSpec
from gateway.relay.topology import Topology
from tests.relay.helpers import binding_keys
from tests.support import rabbit


@pytest.fixture
async def connection(fresh_vhost: str) -> AsyncIterator[AbstractConnection]:
    connection = await aiormq.connect(rabbit.amqp_url(fresh_vhost))
    yield connection
    await connection.close()


async def test_declare_check_bind_delete(connection: AbstractConnection, fresh_vhost: str) -> None:
    topology = Topology(lambda: connection)
    private = QueueSpec("t.sub", durable=False, auto_delete=True, exclusive=True, unique=True)
    first = await topology.declare_queue(private)
    second = await topology.declare_queue(private)
    assert first.startswith("t.sub.")
    assert second.startswith("t.sub.")
    assert first != second  # a fresh name on every declare
    assert await topology.declare_queue(QueueSpec("", durable=False)) != ""  # broker-named
    await topology.declare_exchange("t.direct", "direct")
    await topology.bind(first, Binding("t.direct", "k"))
    assert binding_keys(fresh_vhost, first, "t.direct") == {"k"}
    assert await topology.declare_queue(QueueSpec(first, passive=True)) == first
    await topology.delete_queue(first)
    with pytest.raises(BrokerRefusedError) as info:
        await topology.check_queue(first)
    assert info.value.text.startswith(f"NOT_FOUND - no queue '{first}' in vhost ")
    assert info.value.code == 404
    assert str(info.value) == info.value.text


async def test_refusals_carry_text_and_code(connection: AbstractConnection) -> None:
    topology = Topology(lambda: connection)
    with pytest.raises(BrokerRefusedError) as info:
        await topology.check_exchange("nope")
    assert info.value.text.startswith("NOT_FOUND - no exchange 'nope' in vhost ")
    assert info.value.code == 404
    with pytest.raises(BrokerRefusedError) as info:
        await topology.bind("missing", Binding("amq.topic", "k"))
    assert info.value.text.startswith("broker refused to bind 'missing' to 'amq.topic': ")
    assert info.value.code == 404

    await topology.declare_queue(QueueSpec("jobs"))
    conflicting = QueueSpec("jobs", arguments={"x-max-length": 10})
    with pytest.raises(BrokerRefusedError) as info:
        await topology.declare_queue(conflicting)
    assert info.value.text.startswith("broker refused queue 'jobs': ")
    assert "PRECONDITION_FAILED" in info.value.text
    assert info.value.code == 406
    # Lenient: an existing queue with other arguments is used as it is.
    lenient = QueueSpec("jobs", arguments={"x-max-length": 10}, lenient=True)
    assert await topology.declare_queue(lenient) == "jobs"


async def test_exclusive_queue_of_another_connection(
    connection: AbstractConnection, fresh_vhost: str
) -> None:
    other = await aiormq.connect(rabbit.amqp_url(fresh_vhost))
    try:
        channel = await other.channel()
        await channel.queue_declare("theirs", exclusive=True)
        topology = Topology(lambda: connection)
        with pytest.raises(BrokerRefusedError) as info:
            await topology.check_queue("theirs")
        assert info.value.text == "queue 'theirs' is exclusive to another connection"
        assert info.value.code == 405
    finally:
        await other.close()


async def test_known_exchanges_and_declared_queues(connection: AbstractConnection) -> None:
    calls: list[int] = []

    def counted() -> AbstractConnection:
        calls.append(1)
        return connection

    topology = Topology(counted)
    topology.reset(["amq.topic"])
    await topology.check_exchange("amq.topic")
    assert calls == []  # known: no broker call
    await topology.declare_exchange("t.x", "direct")
    await topology.check_exchange("t.x")
    assert len(calls) == 1  # only the declare
    topology.forget("t.x", "")
    await topology.check_exchange("t.x")
    assert len(calls) == 2  # checked again once the broker said it was gone

    assert await topology.declare_queue(QueueSpec("q1"), remember=True) == "q1"
    await topology.declare_queue(QueueSpec("q2"))
    assert set(topology.declared_queues) == {"q1"}
    topology.forget("", "q1")
    assert set(topology.declared_queues) == set()


async def test_no_connection_is_broker_unavailable() -> None:
    def none() -> AbstractConnection:
        raise BrokerUnavailableError("broker unavailable (test)")

    topology = Topology(none)
    with pytest.raises(BrokerUnavailableError):
        await topology.check_queue("q")
    await topology.delete_queue("q")  # logged, never raised
