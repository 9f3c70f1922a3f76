"""DeepL over its API v2 (https://developers.deepl.com).

- `POST /v2/translate` with `Authorization: DeepL-Auth-Key <key>` and a JSON body
  `{"text": [...], "source_lang": "EN", "target_lang": "ES"}` -> `{"translations":
  [{"detected_source_language": "EN", "text": "..."}]}`, up to 50 texts per request.
- `GET /v2/languages?type=source|target` -> `[{"language": "EN-GB", "name": ...}, ...]`.
- Errors carry `{"message": "..."}`: 400 bad request, 403 authorization failed, 413 request
  too large, 429 (and the older 529) too many requests, 456 quota exceeded, 5xx temporary.

Keys ending in `:fx` belong to the Free API (`https://api-free.deepl.com`), others to the Pro
API (`https://api.deepl.com`), unless a base URL is given. Source languages are sent without a
variant (`EN`); target tags keep theirs (`pt-PT` is `PT-PT`), and a bare `en`/`pt` targets
`EN-US`/`PT-BR` (DeepL deprecates `EN` and `PT` as targets).
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
    RateLimitedError,
    Translation,
    UnsupportedLanguageError,
)

NAME = "deepl"
FREE_URL = "https://api-free.deepl.com"
PRO_URL = "https://api.deepl.com"

#: Gateway tags that DeepL spells differently as a target.
TARGETS: dict[str, str] = {"en": "EN-US", "pt": "PT-BR", "zh-CN": "ZH-HANS", "zh-TW": "ZH-HANT"}


def default_url(auth_key: str) -> str:
    return FREE_URL if auth_key.endswith(":fx") else PRO_URL


class DeepLProvider:
    """`TranslationProvider` for DeepL's API v2."""

    name = NAME
    max_batch = 50

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not auth_key:
            raise ValueError("DeepL needs an auth key")
        self._session = session
        self._headers = {"Authorization": f"DeepL-Auth-Key {auth_key}"}
        self._base = (base_url or default_url(auth_key)).rstrip("/")
        self._timeout = timeout

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        body = {
            "text": list(texts),
            "source_lang": languages.base(source).upper(),
            "target_lang": target_code(target),
        }
        reply = await self._send("POST", "/v2/translate", json=body)
        data = json_body(reply, NAME)
        items = data.get("translations") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(texts):
            raise ProviderUnavailableError(NAME, f"unexpected reply: {reply.quote()}")
        results = []
        for item in items:
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise ProviderUnavailableError(NAME, f"unexpected reply: {reply.quote()}")
            results.append(Translation(text, source, target, NAME))
        return results

    async def pairs(self) -> frozenset[LanguagePair]:
        sources = await self._languages("source")
        targets = await self._languages("target")
        return frozenset(
            LanguagePair(s, t) for s in sources for t in targets if languages.base(t) != s
        )

    async def _languages(self, kind: str) -> set[str]:
        reply = await self._send("GET", "/v2/languages", params={"type": kind})
        data = json_body(reply, NAME)
        if not isinstance(data, list):
            raise ProviderUnavailableError(NAME, f"unexpected /v2/languages reply: {reply.quote()}")
        tags: set[str] = set()
        for entry in data:
            code = entry.get("language") if isinstance(entry, dict) else None
            try:
                tag = languages.normalize(str(code))
            except ValueError:
                continue  # e.g. ES-419: no ISO 639-1 spelling
            tags.add(languages.base(tag) if kind == "source" else tag)
            if kind == "target":
                tags.add(languages.base(tag))  # a bare "en" targets EN-US (TARGETS)
        return tags

    async def _send(self, method: str, path: str, **kwargs: object) -> HttpReply:
        reply = await send(
            self._session,
            NAME,
            method,
            self._base + path,
            timeout=self._timeout,
            headers=self._headers,
            **kwargs,
        )
        if 200 <= reply.status < 300:
            return reply
        message = reply.text_at("message") or reply.quote()
        if reply.status in (401, 403):
            raise AuthenticationError(NAME, f"HTTP {reply.status}: {message}")
        if reply.status == 456:
            raise QuotaExceededError(NAME, f"quota exceeded: {message}")
        if reply.status == 529:
            raise RateLimitedError(NAME, f"HTTP 529: {message}", reply.retry_after)
        if reply.status == 400 and "lang" in message.lower():
            raise UnsupportedLanguageError(NAME, message)
        if reply.status in (400, 413, 414):
            raise InvalidRequestError(NAME, f"HTTP {reply.status}: {message}")
        fail(reply, NAME, message)


def target_code(tag: str) -> str:
    tag = languages.normalize(tag)
    return TARGETS.get(tag, tag.upper())
