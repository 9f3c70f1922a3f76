"""The translation worker in this process, on the real RabbitMQ (a fresh vhost), Redis and
SQLite stores, with an in-process provider (tests/translate/providers.py) and the real lingua
detector: once per language a room needs, never the source language, outages delay and then
deliver, nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

import schemas
from schemas.models import ChatTranslation
from store import Member, Room, SQLiteProfileStore, SQLiteRoomStore, SQLiteTranslationStore
from tests.translate.providers import EchoProvider
from tests.workers.amqp import channel, ready_count, wait_for
from tests.workers.chat import chat_event, publish_events
from workers.framework import WorkerApp
from workers.settings import WorkerSettings
from workers.translate.detect import LanguageDetector
from workers.translate.settings import ProviderLimits, TranslateSettings
from workers.translate.worker import QUEUE, attempts_for, build_app

ENGLISH = "Hello world, how are you today? I hope everything is fine."
SPANISH = "Hola mundo, ¿cómo estás hoy? Espero que todo esté bien."


@pytest.fixture(scope="session")
def detector() -> LanguageDetector:
    """One lingua detector for the session: its models take seconds to load."""
    return LanguageDetector(("en", "es", "fr", "de", "it", "pt"), min_confidence=0.3)


@dataclass
class Stores:
    url: str
    rooms: SQLiteRoomStore
    profiles: SQLiteProfileStore
    translations: SQLiteTranslationStore

    async def room(self, room_id: str, members: dict[str, str | None], lang: str = "") -> None:
        """A room with members; a member's value is their chosen language (None: none)."""
        await self.rooms.create_room(
            Room(room_id, "group", room_id, lang, "", 1),
            [Member(room_id, user, "member", 1) for user in members],
        )
        for user, chosen in members.items():
            if chosen is not None:
                await self.profiles.set_lang(user, chosen, at=1)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    path = tmp_path / "chat.db"
    found = Stores(
        f"sqlite:///{path}",
        SQLiteRoomStore(str(path)),
        SQLiteProfileStore(str(path)),
        SQLiteTranslationStore(str(path)),
    )
    for s in (found.rooms, found.profiles, found.translations):
        await s.open()
    yield found
    for s in (found.rooms, found.profiles, found.translations):
        await s.close()


@dataclass
class Rig:
    app: WorkerApp
    provider: EchoProvider
    stores: Stores
    ch: AbstractChannel
    seen: list[AbstractIncomingMessage] = field(default_factory=list)

    def translations(self) -> list[dict[str, Any]]:
        return [
            json.loads(m.body)
            for m in self.seen
            if (m.headers or {}).get("event-type") == "translation"
        ]

    def metric(self, name: str, **labels: str) -> float:
        return self.app.metrics.registry.get_sample_value(name, labels) or 0.0

    async def post(self, room: str, body: bytes) -> None:
        await publish_events(self.ch, [(room, body)])


@asynccontextmanager
async def running(
    vhost_url: str,
    stores: Stores,
    detector: LanguageDetector,
    redis_url: str,
    redis_prefix: str,
    **translate: Any,
) -> AsyncIterator[Rig]:
    provider = EchoProvider()
    limits = ProviderLimits(max_attempts=1, breaker_failures=3, breaker_cooldown=0.3)
    app = build_app(
        WorkerSettings(amqp_url=vhost_url, store_url=stores.url, metrics_port=None),
        translate=TranslateSettings(
            redis_url=redis_url, redis_prefix=redis_prefix, limits={"fake": limits}, **translate
        ),
        provider=provider,
        detector=detector,
        backoff=(0.2,),
    )
    await app.start()
    try:
        async with channel(vhost_url) as ch:
            watch = await ch.declare_queue(exclusive=True)
            await watch.bind("amq.topic", "room.#")
            rig = Rig(app, provider, stores, ch)

            async def seen(message: AbstractIncomingMessage) -> None:
                rig.seen.append(message)

            await watch.consume(seen, no_ack=True)
            yield rig
    finally:
        await app.drain(2.0)


@pytest.fixture
def rig_args(
    vhost_url: str, stores: Stores, detector: LanguageDetector, redis_url: str, redis_prefix: str
) -> tuple[Any, ...]:
    return vhost_url, stores, detector, redis_url, redis_prefix


async def handled(rig: Rig, count: int) -> None:
    """Until the consumer acked ``count`` messages (translated, skipped or not)."""
    name = "stompgate_worker_messages_handled_total"
    labels = {"worker": "translate", "queue": QUEUE}
    await wait_for(lambda: rig.metric(name, **labels) >= count, 30, f"{count} handled")


async def test_each_language_the_room_needs_once(rig_args: tuple[Any, ...]) -> None:
    stores: Stores = rig_args[1]
    await stores.room("g1", {"alice": "es", "bob": None, "carol": "es", "dave": None}, lang="fr")
    await stores.profiles.record_token_lang("bob", "de_DE", at=1)  # claimed by bob's token
    async with running(*rig_args) as rig:
        await rig.post("g1", chat_event(11, "g1", sender="dave", text=ENGLISH))
        await wait_for(lambda: len(rig.translations()) == 3, 30, "three translations")
        await handled(rig, 1)
        by_lang = {t["lang"]: t for t in rig.translations()}
        assert sorted(by_lang) == ["de-DE", "es", "fr"]
        for lang, event in by_lang.items():
            assert schemas.decode(ChatTranslation, orjson.dumps(event))  # chat.translation.v1
            assert (event["room"], event["message_id"], event["provider"]) == ("g1", "11", "fake")
            assert event["text"] == f"[{lang}] {ENGLISH}"
            assert event["source_lang"] == "en"  # detected: dave has no profile
        translated = [m for m in rig.seen if (m.headers or {}).get("event-type") == "translation"]
        assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in translated)
        assert all(m.routing_key == "room.g1" for m in translated)
        assert all(m.content_type == "application/json" for m in translated)
        stored = await stores.translations.of_messages([11])
        assert [(t.lang, t.event) for t in stored] == [
            (m_lang, next(m.body for m in translated if json.loads(m.body)["lang"] == m_lang))
            for m_lang in ("de-DE", "es", "fr")
        ]
        # the same message again (a redelivery, a republished post): nothing is redone
        await rig.post("g1", chat_event(11, "g1", sender="dave", text=ENGLISH))
        await handled(rig, 2)
        assert len(rig.provider.calls) == 3
        assert len(rig.translations()) == 3


async def test_nothing_when_everyone_reads_the_source_language(rig_args: tuple[Any, ...]) -> None:
    stores: Stores = rig_args[1]
    await stores.room("g2", {"alice": "en", "bob": "en-GB", "carol": "EN"}, lang="en")
    async with running(*rig_args) as rig:
        await rig.post("g2", chat_event(21, "g2", sender="alice", text=ENGLISH))
        await rig.post("nobody-made-it", chat_event(22, "nobody-made-it", text=ENGLISH))
        # no letters to detect from, but alice's profile says she writes English
        await rig.post("g2", chat_event(23, "g2", sender="alice", text="1234 👍"))
        await handled(rig, 3)
        assert rig.provider.calls == []
        assert rig.translations() == []
        assert rig.metric("stompgate_translate_skipped_total", reason="same_language") == 2
        assert rig.metric("stompgate_translate_skipped_total", reason="no_audience") == 1
        assert rig.metric("stompgate_translate_skipped_total", reason="unknown_source") == 0
        assert await stores.translations.of_messages([21, 22, 23]) == []


async def test_the_source_is_the_post_s_then_the_sender_s_then_detected(
    rig_args: tuple[Any, ...],
) -> None:
    stores: Stores = rig_args[1]
    await stores.room("g3", {"ana": "es", "ben": "en", "kai": "de", "zoe": None})
    declared = orjson.loads(chat_event(31, "g3", sender="zoe", text=ENGLISH))
    declared["lang"] = "de"  # the post says German, whatever the text looks like
    async with running(*rig_args) as rig:
        await rig.post("g3", orjson.dumps(declared))
        kai = f"{ENGLISH} Kai"  # kai's profile says German
        await rig.post("g3", chat_event(32, "g3", sender="kai", text=kai))
        await rig.post("g3", chat_event(33, "g3", sender="zoe", text=SPANISH))  # detected
        await rig.post("g3", chat_event(34, "g3", sender="zoe", text="👍 1234"))  # unknown
        await handled(rig, 4)
        calls = {(text[:4], source, target) for text, source, target in rig.provider.calls}
    assert calls == {
        ("Hell", "de", "en"),
        ("Hell", "de", "es"),
        ("Hola", "es", "en"),
        ("Hola", "es", "de"),
    }
    assert len(rig.provider.calls) == 6  # 31 and 32 into en and es, 33 into en and de
    assert rig.metric("stompgate_translate_skipped_total", reason="unknown_source") == 1


async def test_targets_apply_to_every_room(rig_args: tuple[Any, ...]) -> None:
    async with running(*rig_args, targets=("en", "es")) as rig:
        await rig.post("lobby", chat_event(41, "lobby", text=SPANISH))
        await rig.post("lobby", chat_event(42, "lobby", text=ENGLISH))
        await wait_for(lambda: len(rig.translations()) == 2, 30, "two translations")
    assert sorted((t["message_id"], t["lang"]) for t in rig.translations()) == [
        ("41", "en"),
        ("42", "es"),
    ]


async def test_an_outage_delays_translations_then_they_catch_up(
    rig_args: tuple[Any, ...],
) -> None:
    stores: Stores = rig_args[1]
    await stores.room("g5", {"ana": "es", "eve": "fr", "tom": "en"})
    async with running(*rig_args) as rig:
        rig.provider.down = True
        for n in range(5):
            await rig.post("g5", chat_event(50 + n, "g5", sender="tom", text=f"{ENGLISH} {n}"))
        retried = "stompgate_worker_messages_retried_total"
        labels = {"worker": "translate", "queue": QUEUE}
        await wait_for(lambda: rig.metric(retried, **labels) >= 10, 30, "retries while down")
        assert rig.translations() == []  # delayed: none made, none lost
        assert await stores.translations.of_messages(range(50, 55)) == []
        # no busy loop: each message waits its backoff in a retry queue between attempts,
        # and the open breaker answers most attempts without asking the provider
        assert rig.metric("stompgate_translate_delayed_total", reason="circuit-open") > 0
        rig.provider.down = False
        await wait_for(lambda: len(rig.translations()) == 10, 60, "ten translations")
        await asyncio.sleep(0.5)  # a retry still on its way would publish an eleventh
        assert len(rig.translations()) == 10
        assert sorted((t["message_id"], t["lang"]) for t in rig.translations()) == sorted(
            (str(50 + n), lang) for n in range(5) for lang in ("es", "fr")
        )
        assert len(rig.provider.calls) == 10  # once per language, whatever the retries
        assert await ready_count(rig.ch, QUEUE + ".dlq") == 0
        assert len(await stores.translations.of_messages(range(50, 55))) == 10


def test_retries_last_as_long_as_the_setting_says() -> None:
    assert attempts_for(0.5, (1.0,)) == 2
    assert attempts_for(1.0, (1.0,)) == 2
    assert attempts_for(1.5, (1.0, 5.0)) == 3
    assert attempts_for(86_400, (1.0, 5.0, 30.0, 60.0, 300.0)) == 293  # 96 s, then 288 x 300 s
