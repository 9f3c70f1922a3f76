"""The Apertium provider against a real apertium-apy (Debian's packages, English<->Spanish)."""

from __future__ import annotations

import aiohttp
import pytest
import redis.asyncio as aioredis

from workers.translate import Translation, Translator, Untranslatable
from workers.translate.apertium import ApertiumProvider
from workers.translate.cache import TranslationCache
from workers.translate.providers import LanguagePair, UnsupportedLanguageError


async def test_translates_hello_world_into_spanish(
    http: aiohttp.ClientSession, apertium_url: str
) -> None:
    provider = ApertiumProvider(http, apertium_url)
    [result] = await provider.translate(["Hello world"], "en", "es")
    assert result.text.lower() == "hola mundo"
    assert result.provider == "apertium"
    assert (result.source, result.target) == ("en", "es")


async def test_lists_its_pairs_in_iso_639_1(http: aiohttp.ClientSession, apertium_url: str) -> None:
    pairs = await ApertiumProvider(http, apertium_url).pairs()
    assert {LanguagePair("en", "es"), LanguagePair("es", "en")} <= pairs


async def test_a_pair_it_does_not_have_is_unsupported(
    http: aiohttp.ClientSession, apertium_url: str
) -> None:
    provider = ApertiumProvider(http, apertium_url)
    with pytest.raises(UnsupportedLanguageError, match="not installed"):
        await provider.translate(["Hello"], "en", "fr")
    outcome = await Translator(provider).translate("Hello", "en", "fr")
    assert isinstance(outcome, Untranslatable)


async def test_through_the_translator_and_its_cache(
    http: aiohttp.ClientSession, apertium_url: str, redis: aioredis.Redis, redis_prefix: str
) -> None:
    cache = TranslationCache(redis, prefix=redis_prefix, ttl=60)
    translator = Translator(ApertiumProvider(http, apertium_url), cache=cache)
    first = await translator.translate("Good morning, my friend", "en-US", "es")
    assert isinstance(first, Translation)
    assert "amigo" in first.text
    assert not first.cached
    again = await translator.translate("Good morning, my friend", "en-US", "es")
    assert again == Translation(first.text, "en-US", "es", "apertium", cached=True)
    back = await translator.translate(first.text, "es", "en")
    assert isinstance(back, Translation)
    assert back.text.startswith("Good morning")
