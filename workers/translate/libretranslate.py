"""LibreTranslate over its HTTP API (https://docs.libretranslate.com), self-hosted or hosted.

- `POST /translate` with a JSON body `{"q": "..." | [...], "source": "en", "target": "es",
  "format": "text", "api_key": "..."}` -> `{"translatedText": "..." | [...]}`.
- `GET /languages` -> `[{"code": "en", "name": "English", "targets": ["es", ...]}, ...]`.
- Errors carry `{"error": "..."}`: 400 bad request (also "Visit ... to get an API key" when
  the server wants a key), 403 "Invalid API key" or, after repeated rate-limit violations,
  "Too many request limits violations" (a ban), 429 "Slowdown: ..." (per-minute limit),
  500 translation error.

Tags are sent as their language (`pt-BR` is `pt`) except Chinese, which LibreTranslate names by
script (`zh-TW` is `zh-Hant`, `zh-CN` is `zh-Hans`; a bare `zh` stays `zh`).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from workers.translate import languages
from workers.translate.http import HttpReply, fail, json_body, send
from workers.translate.providers import (
    AuthenticationError,
    InvalidRequestError,
    LanguagePair,
    ProviderUnavailableError,
    QuotaExceededError,
    Translation,
    UnsupportedLanguageError,
)

NAME = "libretranslate"
CODES: dict[str, str] = {"zh-TW": "zh-Hant", "zh-CN": "zh-Hans"}
#: LibreTranslate's answer once a client is banned for violating the rate limit too often.
BANNED = "too many request limits violations"


class LibreTranslateProvider:
    """`TranslationProvider` for a LibreTranslate server at `base_url`."""

    name = NAME
    max_batch = 25

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        body: dict[str, object] = {
            # one text as a string: servers older than batch support take only that
            "q": texts[0] if len(texts) == 1 else list(texts),
            "source": code(source),
            "target": code(target),
            "format": "text",
        }
        if self._api_key:
            body["api_key"] = self._api_key
        reply = await self._send("POST", "/translate", json=body)
        data = json_body(reply, NAME)
        result = data.get("translatedText") if isinstance(data, dict) else None
        if isinstance(result, str):
            result = [result]
        if (
            not isinstance(result, list)
            or len(result) != len(texts)
            or not all(isinstance(t, str) for t in result)
        ):
            raise ProviderUnavailableError(NAME, f"unexpected reply: {reply.quote()}")
        return [Translation(str(t), source, target, NAME) for t in result]

    async def pairs(self) -> frozenset[LanguagePair]:
        reply = await self._send("GET", "/languages")
        data = json_body(reply, NAME)
        if not isinstance(data, list):
            raise ProviderUnavailableError(NAME, f"unexpected /languages reply: {reply.quote()}")
        entries = [e for e in data if isinstance(e, dict) and isinstance(e.get("code"), str)]
        every = [str(e["code"]) for e in entries]
        found = set()
        for entry in entries:
            targets = entry.get("targets")
            for target in targets if isinstance(targets, list) else every:
                try:
                    pair = LanguagePair(tag(str(entry["code"])), tag(str(target)))
                except ValueError:
                    continue
                if pair.source != pair.target:
                    found.add(pair)
        return frozenset(found)

    async def _send(self, method: str, path: str, **kwargs: object) -> HttpReply:
        reply = await send(
            self._session, NAME, method, self._base + path, timeout=self._timeout, **kwargs
        )
        if 200 <= reply.status < 300:
            return reply
        message = reply.text_at("error") or reply.quote()
        lowered = message.lower()
        if reply.status == 403 and BANNED in lowered:
            raise QuotaExceededError(NAME, f"banned for a while: {message}")
        if reply.status in (401, 403) or (reply.status == 400 and "api key" in lowered):
            raise AuthenticationError(NAME, f"HTTP {reply.status}: {message}")
        if reply.status == 400 and "not supported" in lowered:
            raise UnsupportedLanguageError(NAME, message)
        if reply.status in (400, 413):
            raise InvalidRequestError(NAME, f"HTTP {reply.status}: {message}")
        fail(reply, NAME, message)


def code(gateway_tag: str) -> str:
    """LibreTranslate's code for a gateway tag."""
    normalized = languages.normalize(gateway_tag)
    if normalized in CODES:
        return CODES[normalized]
    language, _, sub = normalized.partition("-")
    return normalized if len(sub) == 4 else language


def tag(libretranslate_code: str) -> str:
    """The gateway tag for a LibreTranslate code (`zh-Hant` stays `zh-Hant`)."""
    return languages.normalize(libretranslate_code)
