"""Wiring from settings: the configured provider and its Translator.

The caller owns the `aiohttp.ClientSession` and the Redis client (opens them at startup,
closes them at shutdown) and passes them in; nothing here opens a connection.
"""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis

from workers.translate.apertium import ApertiumProvider
from workers.translate.cache import TranslationCache
from workers.translate.deepl import DeepLProvider
from workers.translate.libretranslate import LibreTranslateProvider
from workers.translate.papago import PapagoProvider
from workers.translate.providers import TranslationProvider
from workers.translate.settings import PREFIX, TranslateSettings
from workers.translate.translator import Translator


def build_provider(
    settings: TranslateSettings, session: aiohttp.ClientSession, name: str | None = None
) -> TranslationProvider:
    """The provider `name` (default: `settings.provider`); a ValueError names the missing
    setting when its credentials are not configured."""
    name = name or settings.provider
    timeout = settings.limits_for(name).timeout
    if name == "apertium":
        return ApertiumProvider(session, settings.apertium_url, timeout=timeout)
    if name == "deepl":
        if not settings.deepl_key:
            raise ValueError(f"the deepl provider needs {PREFIX}DEEPL_KEY")
        return DeepLProvider(
            session, settings.deepl_key, base_url=settings.deepl_url, timeout=timeout
        )
    if name == "libretranslate":
        return LibreTranslateProvider(
            session,
            settings.libretranslate_url,
            api_key=settings.libretranslate_key,
            timeout=timeout,
        )
    if name == "papago":
        if not settings.papago_key_id or not settings.papago_key:
            raise ValueError(f"the papago provider needs {PREFIX}PAPAGO_KEY_ID and _PAPAGO_KEY")
        return PapagoProvider(
            session,
            settings.papago_key_id,
            settings.papago_key,
            base_url=settings.papago_url,
            timeout=timeout,
        )
    raise ValueError(f"unknown translation provider {name!r}")


def build_translator(
    settings: TranslateSettings,
    session: aiohttp.ClientSession,
    redis: aioredis.Redis | None,
    name: str | None = None,
) -> Translator:
    """A Translator for the provider `name` (default: the configured one), with its limits
    and, when `redis` is given, the shared cache."""
    provider = build_provider(settings, session, name)
    cache = (
        TranslationCache(
            redis,
            prefix=settings.redis_prefix,
            ttl=settings.cache_ttl,
            concurrency=settings.cache_concurrency,
        )
        if redis is not None
        else None
    )
    return Translator(provider, settings.limits_for(provider.name), cache=cache)
