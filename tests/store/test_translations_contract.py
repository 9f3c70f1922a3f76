"""The one translation-store suite every TranslationStore backend must pass (MongoDB when
MONGODB_URI is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import StoreClosedError, StoredTranslation, TranslationStore

from .backends import BACKENDS, opened_translation_store


@pytest.fixture(params=BACKENDS)
async def translations(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[TranslationStore]:
    async with opened_translation_store(request.param, tmp_path) as s:
        yield s


def translation(
    message_id: int, lang: str, text: str = "hola", provider: str = "apertium"
) -> StoredTranslation:
    event = f'{{"message_id":"{message_id}","lang":"{lang}","text":"{text}"}}'.encode()
    return StoredTranslation(message_id, lang, "lobby", provider, event)


async def test_protocol_conformance(translations: TranslationStore) -> None:
    assert isinstance(translations, TranslationStore)


async def test_insert_is_idempotent_on_message_and_language(
    translations: TranslationStore,
) -> None:
    assert await translations.insert(translation(7, "es"))
    assert not await translations.insert(translation(7, "es", "otra", "deepl"))
    assert await translations.insert(translation(7, "fr", "salut"))
    assert await translations.insert(translation(2**63 - 1, "es"))
    assert await translations.of_messages([7]) == [
        translation(7, "es"),  # the first one is kept
        translation(7, "fr", "salut"),
    ]


async def test_of_messages_by_id_then_language(translations: TranslationStore) -> None:
    for message_id in (30, 10, 20):
        for lang in ("fr", "de", "es"):
            await translations.insert(translation(message_id, lang))
    found = await translations.of_messages([20, 30, 99, 20])
    assert [(t.message_id, t.lang) for t in found] == [
        (20, "de"),
        (20, "es"),
        (20, "fr"),
        (30, "de"),
        (30, "es"),
        (30, "fr"),
    ]
    assert await translations.of_messages([]) == []
    assert await translations.of_messages([99]) == []


async def test_many_messages_at_once(translations: TranslationStore) -> None:
    await asyncio.gather(*(translations.insert(translation(i, "es")) for i in range(1, 1201)))
    found = await translations.of_messages(list(range(1, 1201, 2)))
    assert [t.message_id for t in found] == list(range(1, 1201, 2))


async def test_concurrent_duplicates_store_one(translations: TranslationStore) -> None:
    stored = await asyncio.gather(*(translations.insert(translation(5, "es")) for _ in range(10)))
    assert stored.count(True) == 1
    assert len(await translations.of_messages([5])) == 1


async def test_closed_store_refuses(translations: TranslationStore) -> None:
    await translations.close()
    with pytest.raises(StoreClosedError):
        await translations.of_messages([1])
    await translations.open()  # the fixture closes it again
