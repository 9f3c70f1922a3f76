"""TranslateSettings from STOMPGATE_TRANSLATE_*, and the factory that wires them."""

from __future__ import annotations

import aiohttp
import pytest

from workers.translate import ProviderLimits, TranslateSettings, build_provider, build_translator
from workers.translate.deepl import DeepLProvider
from workers.translate.libretranslate import LibreTranslateProvider


def test_defaults() -> None:
    settings = TranslateSettings.from_env({})
    assert settings.provider == "apertium"
    assert settings.apertium_url == "http://127.0.0.1:2737"
    assert settings.cache_ttl == 7 * 86_400
    assert settings.redis_prefix == "stompgate:"
    assert "en" in settings.detect_languages
    assert settings.limits_for("deepl") == ProviderLimits()


def test_from_env_with_per_provider_limits() -> None:
    settings = TranslateSettings.from_env(
        {
            "STOMPGATE_TRANSLATE_PROVIDER": "DeepL",
            "STOMPGATE_TRANSLATE_DEEPL_KEY": "secret:fx",
            "STOMPGATE_TRANSLATE_CACHE_TTL": "3600",
            "STOMPGATE_TRANSLATE_DETECT_LANGUAGES": "en, es ,ko",
            "STOMPGATE_TRANSLATE_CONCURRENCY": "8",
            "STOMPGATE_TRANSLATE_DEEPL_CONCURRENCY": "2",
            "STOMPGATE_TRANSLATE_DEEPL_RATE": "0.5",
            "STOMPGATE_TRANSLATE_LOCKOUT": "60",
            "STOMPGATE_REDIS_PREFIX": "chat:",
        }
    )
    assert settings.provider == "deepl"
    assert settings.deepl_key == "secret:fx"
    assert "secret" not in repr(settings)  # keys never reach a log line
    assert settings.cache_ttl == 3600
    assert settings.detect_languages == ("en", "es", "ko")
    assert settings.redis_prefix == "chat:"
    deepl = settings.limits_for("deepl")
    assert (deepl.concurrency, deepl.rate, deepl.lockout) == (2, 0.5, 60)
    assert settings.limits_for("apertium").concurrency == 8


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STOMPGATE_TRANSLATE_PROVIDER", "google", "must be one of"),
        ("STOMPGATE_TRANSLATE_CONCURRENCY", "0", "STOMPGATE_TRANSLATE_CONCURRENCY must be > 0"),
        ("STOMPGATE_TRANSLATE_CACHE_CONCURRENCY", "2.5", "whole number"),
        ("STOMPGATE_TRANSLATE_BURST", "1.5", "whole number"),
        ("STOMPGATE_TRANSLATE_PAPAGO_TIMEOUT", "soon", "must be a number"),
        ("STOMPGATE_TRANSLATE_CACHE_TTL", "0", "> 0"),
        ("STOMPGATE_TRANSLATE_BACKOFF_MAX", "0.1", "backoff_max"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TranslateSettings.from_env({name: value})


async def test_factory_builds_the_configured_provider() -> None:
    async with aiohttp.ClientSession() as session:
        settings = TranslateSettings.from_env(
            {
                "STOMPGATE_TRANSLATE_PROVIDER": "libretranslate",
                "STOMPGATE_TRANSLATE_LIBRETRANSLATE_RATE": "3",
            }
        )
        translator = build_translator(settings, session, None)
        assert isinstance(translator.provider, LibreTranslateProvider)
        assert translator.limits.rate == 3
        assert translator.cache is None
        assert isinstance(
            build_provider(TranslateSettings(deepl_key="k"), session, "deepl"), DeepLProvider
        )
        with pytest.raises(ValueError, match="STOMPGATE_TRANSLATE_DEEPL_KEY"):
            build_provider(settings, session, "deepl")
        with pytest.raises(ValueError, match="PAPAGO_KEY_ID"):
            build_provider(settings, session, "papago")
