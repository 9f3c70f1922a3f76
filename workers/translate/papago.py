"""Papago (NAVER Cloud Platform, Papago Translation: Text Translation).

- `POST https://papago.apigw.ntruss.com/nmt/v1/translation` with the headers
  `X-NCP-APIGW-API-KEY-ID` (client id) and `X-NCP-APIGW-API-KEY` (client secret) and a JSON
  body `{"source": "en", "target": "ko", "text": "..."}` (one text, at most 5,000
  characters) -> `{"message": {"result": {"srcLangType": "en", "tarLangType": "ko",
  "translatedText": "..."}}}`.
- Errors carry `{"error": {"errorCode": "...", "message": "..."}}`. The API gateway's codes:
  401 `200` authentication failed / `210` permission denied, 404 `300` not found (API not
  enabled for the application), 429 `400` quota exceeded, 429 `410`/`420` throttled / rate
  limited, 413 `430` too large, 503 `500` / 504 `510` / 500 `900` endpoint trouble. Papago's own:
  400 `N2MT01`-`N2MT08` (missing or unsupported source/target, no such pair, text too long),
  500 `N2MT99`.

There is no endpoint that lists the pairs: `PAIRS` is the table of the documentation (Korean
with 12 languages, English with 10 more, Japanese with 6, the two Chinese scripts). Chinese is
`zh-CN` (simplified) or `zh-TW` (traditional); other tags are sent as their language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import aiohttp

from workers.translate import languages
from workers.translate.http import HttpReply, fail, send
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

NAME = "papago"
DEFAULT_URL = "https://papago.apigw.ntruss.com/nmt/v1"
MAX_TEXT = 5000

_WITH = {
    "ko": ("en", "ja", "zh-CN", "zh-TW", "vi", "th", "id", "fr", "es", "ru", "de", "it"),
    "en": ("ja", "zh-CN", "zh-TW", "vi", "th", "id", "fr", "es", "ru", "de"),
    "ja": ("zh-CN", "zh-TW", "vi", "th", "id", "fr"),
    "zh-CN": ("zh-TW",),
}
#: Both directions of every documented pair.
PAIRS: frozenset[LanguagePair] = frozenset(
    pair
    for one, others in _WITH.items()
    for other in others
    for pair in (LanguagePair(one, other), LanguagePair(other, one))
)
_CHINESE = {
    "zh": "zh-CN",
    "zh-Hans": "zh-CN",
    "zh-CN": "zh-CN",
    "zh-Hant": "zh-TW",
    "zh-TW": "zh-TW",
}
_UNSUPPORTED = {"N2MT02", "N2MT04", "N2MT06"}
_QUOTA = "400"


class PapagoProvider:
    """`TranslationProvider` for Papago Text Translation (one text per request)."""

    name = NAME
    max_batch = 1

    def __init__(
        self,
        session: aiohttp.ClientSession,
        client_id: str,
        client_secret: str,
        *,
        base_url: str = DEFAULT_URL,
        timeout: float = 10.0,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("Papago needs a client id and a client secret")
        self._session = session
        self._headers = {"X-NCP-APIGW-API-KEY-ID": client_id, "X-NCP-APIGW-API-KEY": client_secret}
        self._url = base_url.rstrip("/") + "/translation"
        self._timeout = timeout

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        pair = {"source": code(source), "target": code(target)}
        results = []
        for text in texts:
            if len(text) > MAX_TEXT:
                raise InvalidRequestError(NAME, f"text longer than {MAX_TEXT} characters")
            reply = await send(
                self._session,
                NAME,
                "POST",
                self._url,
                timeout=self._timeout,
                headers=self._headers,
                json={**pair, "text": text},
            )
            if not 200 <= reply.status < 300:
                _raise(reply)
            translated = reply.text_at("message", "result", "translatedText")
            if translated is None:
                raise ProviderUnavailableError(NAME, f"unexpected reply: {reply.quote()}")
            results.append(Translation(translated, source, target, NAME))
        return results

    async def pairs(self) -> frozenset[LanguagePair]:
        return PAIRS


def code(tag: str) -> str:
    """Papago's code for a gateway tag."""
    normalized = languages.normalize(tag)
    return _CHINESE.get(normalized) or languages.base(normalized)


def _raise(reply: HttpReply) -> NoReturn:
    error_code = reply.text_at("error", "errorCode") or ""
    message = reply.text_at("error", "message") or reply.quote()
    what = f"HTTP {reply.status} {error_code}: {message}"
    if reply.status in (401, 403, 404):
        raise AuthenticationError(NAME, what)
    if reply.status == 429 and error_code == _QUOTA:
        raise QuotaExceededError(NAME, what)
    if reply.status == 429:
        raise RateLimitedError(NAME, what, reply.retry_after)
    if reply.status == 400 and error_code in _UNSUPPORTED:
        raise UnsupportedLanguageError(NAME, what)
    if reply.status in (400, 413):
        raise InvalidRequestError(NAME, what)
    fail(reply, NAME, f"{error_code}: {message}")
