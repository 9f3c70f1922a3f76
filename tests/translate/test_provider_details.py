"""What each provider sends and how it reads its service's particular answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.translate.cases import BY_NAME, GOOD
from tests.translate.fakes import FakeService, Reply, papago_error
from workers.translate import Translation, Translator, Untranslatable
from workers.translate import deepl as deepl_mod
from workers.translate import libretranslate as libre_mod
from workers.translate import papago as papago_mod
from workers.translate.apertium import ALPHA2, ALPHA3
from workers.translate.deepl import DeepLProvider
from workers.translate.papago import PAIRS, PapagoProvider
from workers.translate.providers import (
    AuthenticationError,
    InvalidRequestError,
    LanguagePair,
    UnsupportedLanguageError,
)


def test_language_codes() -> None:
    assert deepl_mod.target_code("en") == "EN-US"
    assert deepl_mod.target_code("en-gb") == "EN-GB"
    assert deepl_mod.target_code("pt") == "PT-BR"
    assert deepl_mod.target_code("zh-TW") == "ZH-HANT"
    assert deepl_mod.target_code("es") == "ES"
    assert libre_mod.code("pt-BR") == "pt"
    assert libre_mod.code("zh-TW") == "zh-Hant"
    assert libre_mod.code("zh-Hans") == "zh-Hans"
    assert papago_mod.code("zh") == "zh-CN"
    assert papago_mod.code("zh-Hant") == "zh-TW"
    assert papago_mod.code("en-US") == "en"
    assert ALPHA3["en"] == "eng"
    assert ALPHA3["es"] == "spa"
    assert all(ALPHA2[three] == two for two, three in ALPHA3.items())


def test_deepl_picks_the_api_by_key() -> None:
    assert deepl_mod.default_url("abc:fx") == deepl_mod.FREE_URL
    assert deepl_mod.default_url("abc") == deepl_mod.PRO_URL


def test_papago_pairs_are_the_documented_ones() -> None:
    assert LanguagePair("ko", "it") in PAIRS
    assert LanguagePair("it", "ko") in PAIRS
    assert LanguagePair("en", "de") in PAIRS
    assert LanguagePair("en", "it") not in PAIRS
    assert LanguagePair("zh-TW", "zh-CN") in PAIRS
    assert len(PAIRS) == 2 * (12 + 10 + 6 + 1)


@pytest.fixture
async def deepl_fake() -> AsyncIterator[FakeService]:
    fake = BY_NAME["deepl"].fake()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


async def test_deepl_targets_a_variant_and_batches(
    http: aiohttp.ClientSession, deepl_fake: FakeService
) -> None:
    provider = DeepLProvider(http, GOOD, base_url=deepl_fake.url)
    results = await provider.translate(["Hola", "Adiós"], "es", "en")
    assert [r.text for r in results] == ["[en-us] Hola", "[en-us] Adiós"]
    [request] = deepl_fake.translate_requests
    assert request.body == {"text": ["Hola", "Adiós"], "source_lang": "ES", "target_lang": "EN-US"}
    assert request.headers["Authorization"] == f"DeepL-Auth-Key {GOOD}"
    pairs = await provider.pairs()
    assert {
        LanguagePair("es", "en"),
        LanguagePair("es", "en-GB"),
        LanguagePair("en", "pt-PT"),
    } <= pairs
    assert LanguagePair("en", "en-GB") not in pairs


async def test_deepl_unsupported_target_and_too_large(
    http: aiohttp.ClientSession, deepl_fake: FakeService
) -> None:
    provider = DeepLProvider(http, GOOD, base_url=deepl_fake.url)
    deepl_fake.script(Reply(400, {"message": "Value for 'target_lang' not supported."}))
    with pytest.raises(UnsupportedLanguageError):
        await provider.translate(["Hi"], "en", "es")
    deepl_fake.script(Reply(413, {"message": "Request Entity Too Large"}))
    with pytest.raises(InvalidRequestError):
        await provider.translate(["Hi"], "en", "es")
    # a pair DeepL does not list is never sent
    outcome = await Translator(provider).translate("Hi", "en", "ja")
    assert isinstance(outcome, Untranslatable)
    assert len(deepl_fake.translate_requests) == 2


async def test_the_translator_batches_up_to_max_batch(
    http: aiohttp.ClientSession, deepl_fake: FakeService
) -> None:
    translator = Translator(DeepLProvider(http, GOOD, base_url=deepl_fake.url))
    texts = [f"line {i}" for i in range(120)]
    outcomes = await translator.translate_many(texts, "en", "de")
    assert outcomes == [Translation(f"[de] {t}", "en", "de", "deepl") for t in texts]
    assert sorted(len(r.body["text"]) for r in deepl_fake.translate_requests) == [20, 50, 50]


async def test_libretranslate_wants_a_key(http: aiohttp.ClientSession) -> None:
    fake = BY_NAME["libretranslate"].fake()
    await fake.start()
    try:
        provider = libre_mod.LibreTranslateProvider(http, fake.url)
        fake.script(
            Reply(400, {"error": "Visit https://portal.libretranslate.com to get an API key"})
        )
        with pytest.raises(AuthenticationError):
            await provider.translate(["Hi"], "en", "es")
        fake.script(Reply(400, {"error": "ja is not supported"}))
        with pytest.raises(UnsupportedLanguageError):
            await provider.translate(["Hi"], "en", "es")
        keyed = libre_mod.LibreTranslateProvider(http, fake.url, api_key=GOOD)
        results = await keyed.translate(["a", "b"], "en", "fr")
        assert [r.text for r in results] == ["[fr] a", "[fr] b"]
        assert fake.translate_requests[-1].body["q"] == ["a", "b"]
        assert fake.translate_requests[-1].body["api_key"] == GOOD
    finally:
        await fake.close()


async def test_papago_errors(http: aiohttp.ClientSession) -> None:
    fake = BY_NAME["papago"].fake()
    await fake.start()
    try:
        provider = PapagoProvider(http, "client-id", GOOD, base_url=fake.url + "/nmt/v1")
        with pytest.raises(InvalidRequestError, match="5000"):
            await provider.translate(["x" * 5001], "ko", "en")
        fake.script(papago_error(400, "N2MT06", "There is no source-to-target translator."))
        outcome = await Translator(provider).translate("Hello", "en", "ko")
        assert isinstance(outcome, Untranslatable)
        assert "N2MT06" in outcome.detail
        fake.script(papago_error(404, "300", "Not Found Exception"))
        with pytest.raises(AuthenticationError):
            await provider.translate(["Hello"], "en", "ko")
        [result] = await provider.translate(["Hello"], "en", "zh-Hant")
        assert result.text == "[zh-TW] Hello"
        assert fake.translate_requests[-1].headers["X-NCP-APIGW-API-KEY-ID"] == "client-id"
        # a pair Papago does not document is not sent
        assert isinstance(await Translator(provider).translate("Hi", "en", "it"), Untranslatable)
    finally:
        await fake.close()
