"""The persist worker end to end: real RabbitMQ, SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from aio_pika.abc import AbstractChannel

import schemas
from store import MessageStore, SQLiteStore, StoredMessage
from workers.framework import BatchSpec, WorkerApp
from workers.persist import QUEUE, ChatMessageValidator, InvalidChatMessageError, build_app
from workers.settings import WorkerSettings

from .amqp import channel, drain_queue, ready_count, wait_for_async
from .chat import chat_event, publish_events

FAST = BatchSpec(max_size=100, max_wait=0.02)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "messages.db"), synchronous="normal")
    await s.open()
    yield s
    await s.close()


def persist_app(
    url: str, store: MessageStore, apps: list[WorkerApp], **kwargs: object
) -> WorkerApp:
    settings = WorkerSettings(amqp_url=url, metrics_port=None)
    app = build_app(settings, store=store, batch=FAST, backoff=(0.05, 0.1), **kwargs)  # type: ignore[arg-type]
    apps.append(app)
    return app


async def stored_count(store: MessageStore, n: int, within: float = 20.0) -> None:
    async def probe() -> bool:
        return await store.count() >= n

    await wait_for_async(probe, within, f"{n} stored")


async def test_stores_every_message_once_and_skips_other_events(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    app = persist_app(vhost_url, store, apps)
    await app.start()
    events = [(f"r{i % 3}", chat_event(1000 + i, f"r{i % 3}", text=f"m{i}")) for i in range(600)]
    async with channel(vhost_url) as ch:
        await publish_events(ch, events)
        await publish_events(ch, [("r0", b'{"user":"bob"}')] * 5, event_type="typing")
        await publish_events(ch, [("r1", b'{"upto":1000}')] * 5, event_type="receipt")
        await stored_count(store, 600)
        await app.drain()
        assert await ready_count(ch, QUEUE) == 0
        assert await ready_count(ch, QUEUE + ".dlq") == 0
    assert await store.count() == 600
    assert await store.count("r0") == 200
    latest = await store.history("r2", limit=3)
    assert [m.id for m in latest] == [1599, 1596, 1593]
    assert latest[0].event == events[599][1]  # the exact bytes published
    assert latest[0] == StoredMessage(
        id=1599,
        room="r2",
        sender="alice",
        client_id="c-1599",
        sent_at=1_700_000_000_000,
        event=events[599][1],
    )


async def test_duplicates_are_stored_once(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    app = persist_app(vhost_url, store, apps)
    await app.start()
    events = [
        ("r", chat_event(1, "r", client_id="a")),
        ("r", chat_event(1, "r", client_id="a")),  # redelivered/republished as is
        ("r", chat_event(2, "r", client_id="a")),  # client retry: new id, same client id
        ("r", chat_event(3, "r", client_id="c")),
    ]
    async with channel(vhost_url) as ch:
        await publish_events(ch, events)
        await stored_count(store, 2)
        await asyncio.sleep(0.2)
        await app.drain()
        assert await ready_count(ch, QUEUE) == 0
        assert await ready_count(ch, QUEUE + ".dlq") == 0  # true duplicates: no conflict
    assert [m.id for m in await store.history("r")] == [3, 1]
    dupes = app.metrics.registry.get_sample_value("stompgate_persist_duplicates_total")
    assert dupes == 2
    assert app.metrics.registry.get_sample_value("stompgate_persist_conflicts_total") == 0


async def test_invalid_events_are_dead_lettered(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    app = persist_app(vhost_url, store, apps)
    await app.start()
    bad = [b'{"id": "5"}', b"not json", chat_event(0, "r9"), chat_event(2**63, "r9")]
    async with channel(vhost_url) as ch:
        await publish_events(ch, [("r9", body) for body in bad])
        await publish_events(ch, [("r9", chat_event(7, "r9"))])
        await stored_count(store, 1)
        await wait_for_async(
            lambda: _ready_at_least(ch, QUEUE + ".dlq", len(bad)), 10, "dead letters"
        )
        await app.drain()
        dead = await drain_queue(ch, QUEUE + ".dlq")
    assert [m.id for m in await store.history("r9")] == [7]
    assert sorted(m.body for m in dead) == sorted(bad)
    assert all(m.headers["x-dead-letter-reason"] == "invalid" for m in dead)
    assert all(m.headers["x-original-routing-key"] == "room.r9" for m in dead)
    errors = sorted(str(m.headers["x-error"]) for m in dead)
    assert any(e.startswith("SchemaError: invalid chat.message") for e in errors)
    assert any(e.startswith("InvalidChatMessageError: message id 0") for e in errors)


async def _ready_at_least(ch: AbstractChannel, queue: str, n: int) -> bool:
    return await ready_count(ch, queue) >= n


class FlakyStore:
    """Delegates to a real store; the first `failures` insert_many calls raise."""

    def __init__(self, inner: MessageStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"store down (call {self.calls})")
        return await self.inner.insert_many(messages)

    async def history(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        return await self.inner.history(room, before=before, after=after, limit=limit)

    async def count(self, room: str | None = None) -> int:
        return await self.inner.count(room)


async def test_store_outage_loses_nothing(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    flaky = FlakyStore(store, failures=6)
    app = persist_app(vhost_url, flaky, apps)
    await app.start()
    events = [("o", chat_event(i, "o")) for i in range(1, 401)]
    async with channel(vhost_url) as ch:
        await publish_events(ch, events)
        await stored_count(store, 400)
        await app.drain()
        assert await ready_count(ch, QUEUE) == 0
        assert await ready_count(ch, QUEUE + ".dlq") == 0
    assert flaky.calls > 6
    ids = [m.id for m in await store.history("o", after=0, limit=1000)]
    assert ids == list(range(1, 401))
    registry = app.metrics.registry
    labels = {"worker": "persist", "queue": QUEUE}
    assert registry.get_sample_value("stompgate_worker_handler_failures_total", labels) == 6


class StallingStore(FlakyStore):
    """Writes the first batch, then never returns: the worker dies before it can ack."""

    def __init__(self, inner: MessageStore) -> None:
        super().__init__(inner, failures=0)
        self.stalled = asyncio.Event()

    async def insert_many(self, messages: Sequence[StoredMessage]) -> int:
        stored = await self.inner.insert_many(messages)
        self.stalled.set()
        await asyncio.Event().wait()
        return stored


async def test_killed_worker_loses_and_duplicates_nothing(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    events = [(f"k{i % 4}", chat_event(10_000 + i, f"k{i % 4}")) for i in range(1000)]
    stalling = StallingStore(store)
    first = persist_app(vhost_url, stalling, apps)
    await first.start()
    async with channel(vhost_url) as ch:
        await publish_events(ch, events)
        await asyncio.wait_for(stalling.stalled.wait(), 10)
        written = await store.count()
        assert 0 < written < 1000
        await first.abort()  # dies mid-batch: written to the store, never acked

        second = persist_app(vhost_url, store, apps)
        await second.start()
        await stored_count(store, 1000)
        await asyncio.sleep(0.1)
        await second.drain()
        assert await ready_count(ch, QUEUE) == 0
    assert await store.count() == 1000
    ids = [m.id for room in ("k0", "k1", "k2", "k3") for m in await store.history(room, limit=500)]
    assert sorted(ids) == list(range(10_000, 11_000))
    dupes = second.metrics.registry.get_sample_value("stompgate_persist_duplicates_total")
    assert dupes is not None
    assert dupes >= written  # the unacked batch came back and was skipped


async def test_worker_task_cancelled_mid_run(
    vhost_url: str, store: SQLiteStore, apps: list[WorkerApp]
) -> None:
    events = [("c", chat_event(i, "c")) for i in range(1, 501)]
    first = persist_app(vhost_url, store, apps)
    task = asyncio.create_task(first.run(handle_signals=False))
    async with channel(vhost_url) as ch:
        await wait_for_async(lambda: _true(first.healthy), 10, "first worker up")
        await publish_events(ch, events[:250])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await publish_events(ch, events[250:])
        second = persist_app(vhost_url, store, apps)
        await second.start()
        await stored_count(store, 500)
        await second.drain()
    ids = [m.id for m in await store.history("c", after=0, limit=1000)]
    assert ids == list(range(1, 501))


async def _true(value: bool) -> bool:
    return value


EXAMPLES = Path(schemas.__file__).parent / "examples" / "chat.message.v1"


@pytest.mark.parametrize("path", sorted((EXAMPLES / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_validator_accepts_the_schema_examples(path: Path) -> None:
    body = path.read_bytes()
    message = ChatMessageValidator()(body)
    event = orjson.loads(body)
    assert message == StoredMessage(
        id=int(event["id"]),
        room=event["room"],
        sender=event["sender"],
        client_id=event["client_id"],
        sent_at=event["sent_at"],
        event=body,
    )


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "invalid").glob("*.json")), ids=lambda p: p.stem
)
def test_validator_rejects_the_schema_counter_examples(path: Path) -> None:
    with pytest.raises(schemas.SchemaError):
        ChatMessageValidator()(path.read_bytes())


@pytest.mark.parametrize("id_", [0, 2**63, 10**19 - 1])
def test_validator_rejects_ids_the_store_cannot_take(id_: int) -> None:
    with pytest.raises(InvalidChatMessageError):
        ChatMessageValidator()(chat_event(id_))


def test_largest_id_is_accepted() -> None:
    assert ChatMessageValidator()(chat_event(2**63 - 1)).id == 2**63 - 1
