"""The translation worker: every chat message into the languages its room needs, once each,
off the chat path.

`python -m workers translate` consumes `amq.topic` pattern `room.*` through the durable
quorum queue `stompgate.translate` (the same publish that reaches live subscribers and the
persist worker), events with `event-type: message` only, validated against chat.message.v1.
For each message (`TranslationWorker.handle`):

1. the languages its room needs (`Audience`: the room's own, its members' preferred ones,
   `STOMPGATE_TRANSLATE_TARGETS`), less the message's source language: the post's own
   ``lang``, else the sender's profile language, else what `LanguageDetector` finds (none
   found: nothing to translate from, the message is skipped);
2. less the languages the translation store has for it already (a retry, a redelivery);
3. each of the others through the `Translator` (cache, bounded concurrency, rate limit,
   retries, breaker): a `Translation` is published to the room (`amq.topic` `room.<room>`,
   `event-type: translation`, persistent, publisher-confirmed; chat.translation.v1), then
   stored; `Untranslatable` is skipped; `RetryLater` (the provider is down, rate limiting,
   out of quota, or its breaker is open) is kept for later;
4. if any was kept for later, the handler raises `TranslationDelayedError`: the framework
   acks the message and republishes it to its retry queue, so it comes back after the
   backoff (`BACKOFF`: 1, 5, 30, 60 s, then every 300 s) and only the missing languages are
   asked again; nothing waits in the process meanwhile, and past
   `STOMPGATE_TRANSLATE_RETRY_FOR` seconds (a day) the message goes to the DLQ.

A chat message never waits for any of this: the gateway published it to the room and had the
broker's confirm before the worker saw it, and a provider outage only delays translations
(they catch up when the provider is back). A translation is published before it is stored,
so a crash in between publishes it again on the redelivery (clients key translations by
message id and language); once stored, it is never asked for again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry, Counter

import schemas
from chatstate.client import client_name, redis_client
from schemas.models import MAX_TRANSLATED_TEXT, ChatMessage, ChatTranslation
from store import (
    ProfileStore,
    RoomStore,
    StoredTranslation,
    TranslationStore,
    open_profile_store,
    open_room_store,
    open_translation_store,
)
from workers.framework import Delivery, WorkerApp
from workers.settings import WorkerSettings
from workers.translate import languages
from workers.translate.audience import Audience
from workers.translate.cache import TranslationCache
from workers.translate.detect import LanguageDetector
from workers.translate.factory import build_provider
from workers.translate.outcomes import Outcome, RetryLater, Untranslatable
from workers.translate.providers import Translation, TranslationProvider
from workers.translate.settings import TranslateSettings
from workers.translate.translator import Translator

__all__ = ["BACKOFF", "QUEUE", "TranslationDelayedError", "TranslationWorker", "build_app"]

log = logging.getLogger("stompgate.workers.translate")

QUEUE = "stompgate.translate"
"""The queue's name in the default deployment (`<deployment>.translate` in general)."""
PATTERN = "room.*"
EXCHANGE = "amq.topic"
"""The default rooms' topic exchange (`STOMPGATE_TOPIC_EXCHANGE`)."""
EVENT_TYPE = "translation"
#: Seconds before retry 1, 2, 3, 4, then every retry (one retry queue each).
BACKOFF = (1.0, 5.0, 30.0, 60.0, 300.0)

Publish = Callable[[str, bytes, dict[str, Any]], Awaitable[None]]
"""(routing key on amq.topic, body, headers): returns once the broker confirmed."""


class TranslationDelayedError(Exception):
    """Some translations of a message must wait: the provider said "retry later"."""

    def __init__(self, delayed: Sequence[tuple[str, RetryLater]]) -> None:
        first = delayed[0][1]
        langs = ", ".join(lang for lang, _ in delayed)
        super().__init__(
            f"{len(delayed)} translation(s) delayed ({langs}): {first.provider} "
            f"{first.reason.value}, retry in {first.after:.0f} s: {first.detail}"
        )
        self.delayed = tuple(delayed)


def attempts_for(seconds: float, backoff: Sequence[float]) -> int:
    """Handler calls in all so that the retries' waits add up to at least ``seconds``."""
    waited, attempts = 0.0, 1
    while waited < seconds:
        waited += backoff[min(attempts, len(backoff)) - 1]
        attempts += 1
    return attempts


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "stompgate_translate_published",
            "Translations published to their room and stored, by provider.",
            ("provider",),
            registry=registry,
        )
        self.delayed = Counter(
            "stompgate_translate_delayed",
            "Translations put off for a retry, by why the provider said to wait.",
            ("reason",),
            registry=registry,
        )
        self.untranslatable = Counter(
            "stompgate_translate_untranslatable",
            "Translations the provider will never make (pair not offered, text refused).",
            registry=registry,
        )
        self.skipped = Counter(
            "stompgate_translate_skipped",
            "Messages with nothing to translate, by why: no_audience (no language wanted),"
            " unknown_source (no language found for the text), same_language.",
            ("reason",),
            registry=registry,
        )


class Translate(Protocol):
    async def translate(self, text: str, source: str, target: str) -> Outcome: ...


class Detect(Protocol):
    def detect(self, text: str) -> str | None: ...


class TranslationWorker:
    """What the consumer does with one chat message (see the module docstring)."""

    def __init__(
        self,
        *,
        translator: Translate,
        detector: Detect,
        audience: Audience,
        store: TranslationStore,
        publish: Publish,
        registry: CollectorRegistry,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._translator = translator
        self._detector = detector
        self._audience = audience
        self._store = store
        self._publish = publish
        self._clock = clock
        self._metrics = _Metrics(registry)

    async def handle(self, delivery: Delivery[ChatMessage]) -> None:
        message = delivery.payload
        wanted = await self._audience.languages(message.room)
        if not wanted:
            self._metrics.skipped.labels("no_audience").inc()
            return
        source = await self._source(message)
        if source is None:
            self._metrics.skipped.labels("unknown_source").inc()
            return
        targets = sorted(t for t in wanted if languages.base(t) != languages.base(source))
        if not targets:
            self._metrics.skipped.labels("same_language").inc()
            return
        message_id = int(message.id)
        done = {t.lang for t in await self._store.of_messages([message_id])}
        todo = [t for t in targets if t not in done]
        outcomes = await asyncio.gather(
            *(self._translator.translate(message.text, source, target) for target in todo)
        )
        delayed: list[tuple[str, RetryLater]] = []
        deliveries = []
        for target, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, Translation) and 0 < len(outcome.text) <= MAX_TRANSLATED_TEXT:
                deliveries.append(self._deliver(message, source, target, outcome))
            elif isinstance(outcome, RetryLater):
                self._metrics.delayed.labels(outcome.reason.value).inc()
                delayed.append((target, outcome))
            else:
                detail = outcome.detail if isinstance(outcome, Untranslatable) else "empty/too long"
                log.info("message %s not translated into %s: %s", message.id, target, detail)
                self._metrics.untranslatable.inc()
        await asyncio.gather(*deliveries)
        if delayed:
            raise TranslationDelayedError(delayed)

    async def _source(self, message: ChatMessage) -> str | None:
        declared = message.lang if isinstance(message.lang, str) else None
        if declared is not None:
            try:
                return languages.normalize(declared)
            except ValueError:
                pass  # a tag no provider takes (e.g. three letters): ask the profile
        profile = await self._audience.language_of(message.sender)
        return profile if profile is not None else self._detector.detect(message.text)

    async def _deliver(
        self, message: ChatMessage, source: str, target: str, done: Translation
    ) -> None:
        event = msgspec.json.encode(
            ChatTranslation(
                v=1,
                type="translation",
                room=message.room,
                message_id=message.id,
                lang=target,
                text=done.text,
                provider=done.provider,
                translated_at=self._clock(),
                source_lang=source,
            )
        )
        await self._publish(f"room.{message.room}", event, {"event-type": EVENT_TYPE})
        await self._store.insert(
            StoredTranslation(int(message.id), target, message.room, done.provider, event)
        )
        self._metrics.published.labels(done.provider).inc()


class _Service:
    """The worker's resources, opened with the app and closed with it."""

    def __init__(
        self,
        app: WorkerApp,
        settings: WorkerSettings,
        translate: TranslateSettings,
        provider: TranslationProvider | None,
        detector: Detect | None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.translate = translate
        self.provider = provider
        self.detector = detector
        self.worker: TranslationWorker | None = None
        self.closers: list[Callable[[], Awaitable[object]]] = []

    async def open(self) -> None:
        s, t = self.settings, self.translate
        rooms: RoomStore = open_room_store(s.store_url)
        profiles: ProfileStore = open_profile_store(s.store_url)
        store: TranslationStore = open_translation_store(s.store_url)
        for opened in (rooms, profiles, store):
            await opened.open()
            self.closers.append(opened.close)
        http = aiohttp.ClientSession()
        self.closers.append(http.close)
        redis = redis_client(t.redis_url, name=client_name("translate"), max_connections=0)
        self.closers.append(redis.aclose)
        provider = self.provider or build_provider(t, http)
        cache = TranslationCache(
            redis, prefix=t.redis_prefix, ttl=t.cache_ttl, concurrency=t.cache_concurrency
        )
        translator = Translator(provider, t.limits_for(provider.name), cache=cache)
        # lingua loads its models on first use, holding the GIL for seconds: load them now,
        # before consuming, rather than in the middle of a burst
        detector = self.detector or LanguageDetector(
            t.detect_languages, min_confidence=t.detect_min_confidence, preload=True
        )
        audience = Audience(rooms, profiles, targets=t.targets, ttl=t.room_ttl)
        self.worker = TranslationWorker(
            translator=translator,
            detector=detector,
            audience=audience,
            store=store,
            publish=self._publish,
            registry=self.app.metrics.registry,
        )
        log.info("translating with %s into what each room needs", provider.name)

    async def _publish(self, routing_key: str, body: bytes, headers: dict[str, Any]) -> None:
        exchange = self.settings.topic_exchange
        await self.app.publish(routing_key, body, exchange=exchange, headers=headers)

    async def close(self) -> None:
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            try:
                await close()
            except Exception:
                log.warning("closing a translation worker resource failed", exc_info=True)

    async def handle(self, delivery: Delivery[ChatMessage]) -> None:
        assert self.worker is not None  # the app opens us before it consumes
        await self.worker.handle(delivery)


def _chat_message(body: bytes) -> ChatMessage:
    return schemas.decode(ChatMessage, body)


def build_app(
    settings: WorkerSettings,
    *,
    translate: TranslateSettings | None = None,
    provider: TranslationProvider | None = None,
    detector: Detect | None = None,
    backoff: Sequence[float] = BACKOFF,
    name: str = "translate",
    queue: str | None = None,
) -> WorkerApp:
    """The translation worker. ``translate`` defaults to `TranslateSettings.from_env()`;
    ``provider`` replaces the configured one (tests, benchmarks), ``detector`` the lingua
    detector the worker would build (its models take seconds to load)."""
    t = translate or TranslateSettings.from_env()
    app = WorkerApp(name)
    app.configure(settings)
    service = _Service(app, settings, t, provider, detector)
    app.on_startup(service.open)
    app.on_shutdown(service.close)
    app.consumer(
        PATTERN,
        exchange=settings.topic_exchange,
        queue=queue or settings.queue("translate"),
        validator=_chat_message,
        only_headers={"event-type": "message"},
        max_attempts=attempts_for(t.retry_for, backoff),
        backoff=backoff,
    )(service.handle)
    return app
