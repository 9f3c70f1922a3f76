"""Apertium through apertium-apy's HTTP API: the offline provider for development and tests.

apertium-apy (Debian package `apertium-apy`) serves the installed pairs
(`/usr/share/apertium/modes`, e.g. from `apertium-eng-spa`):

- `GET /listPairs` -> `{"responseData": [{"sourceLanguage": "eng", "targetLanguage": "spa"},
  ...], "responseStatus": 200}`
- `POST /translate` (form: `langpair=eng|spa`, `q=...`) -> `{"responseData":
  {"translatedText": "..."}, "responseStatus": 200}`; 400 `{"explanation": "That pair is not
  installed"}`, 503 when a pipeline is stuck.

Apertium names languages with ISO 639-3 codes; the gateway's ISO 639-1 tags are mapped with
`ALPHA3` (a region or script is dropped: `en-US` is `eng`). Pairs whose codes are not in the
table, or that name a variant (`spa-eng_US`), are not offered. Texts go one per request, as
plain text (`format=txt`) and with unknown words left unmarked (`markUnknown=no`: Apertium
would prefix them with `*`).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from workers.translate import languages
from workers.translate.http import json_body, raise_for_status, send
from workers.translate.providers import (
    LanguagePair,
    ProviderUnavailableError,
    Translation,
    UnsupportedLanguageError,
)

#: ISO 639-1 -> ISO 639-3 for the languages Apertium has released pairs for.
ALPHA3: dict[str, str] = {
    "af": "afr", "an": "arg", "ar": "ara", "be": "bel", "bg": "bul", "br": "bre", "ca": "cat",
    "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell", "en": "eng", "eo": "epo",
    "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fo": "fao", "fr": "fra",
    "ga": "gle", "gd": "gla", "gl": "glg", "he": "heb", "hi": "hin", "id": "ind", "is": "isl",
    "it": "ita", "kk": "kaz", "ky": "kir", "lt": "lit", "lv": "lav", "mk": "mkd", "ms": "msa",
    "mt": "mlt", "nb": "nob", "nl": "nld", "nn": "nno", "oc": "oci", "pl": "pol", "pt": "por",
    "ro": "ron", "ru": "rus", "sc": "srd", "se": "sme", "sk": "slk", "sl": "slv", "sq": "sqi",
    "sv": "swe", "tr": "tur", "tt": "tat", "uk": "ukr", "ur": "urd", "uz": "uzb",
}  # fmt: skip
ALPHA2: dict[str, str] = {three: two for two, three in ALPHA3.items()}

NAME = "apertium"


class ApertiumProvider:
    """`TranslationProvider` for an apertium-apy server at `base_url`."""

    name = NAME
    max_batch = 1

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout: float = 10.0
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        langpair = f"{self._code(source, target)}|{self._code(target, source)}"
        results = []
        for text in texts:
            reply = await send(
                self._session,
                NAME,
                "POST",
                f"{self._base}/translate",
                timeout=self._timeout,
                data={"langpair": langpair, "q": text, "format": "txt", "markUnknown": "no"},
            )
            if reply.status == 400:
                detail = reply.text_at("explanation") or reply.quote()
                raise UnsupportedLanguageError(NAME, f"{source}->{target}: {detail}")
            raise_for_status(reply, NAME)
            translated = reply.text_at("responseData", "translatedText")
            if translated is None:
                raise ProviderUnavailableError(NAME, f"unexpected reply: {reply.quote()}")
            results.append(Translation(translated, source, target, NAME))
        return results

    async def pairs(self) -> frozenset[LanguagePair]:
        reply = await send(
            self._session, NAME, "GET", f"{self._base}/listPairs", timeout=self._timeout
        )
        raise_for_status(reply, NAME)
        data = json_body(reply, NAME)
        entries = data.get("responseData") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ProviderUnavailableError(NAME, f"unexpected /listPairs reply: {reply.quote()}")
        found = set()
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            source = ALPHA2.get(str(entry.get("sourceLanguage")))
            target = ALPHA2.get(str(entry.get("targetLanguage")))
            if source and target:
                found.add(LanguagePair(source, target))
        return frozenset(found)

    @staticmethod
    def _code(tag: str, other: str) -> str:
        code = ALPHA3.get(languages.base(tag))
        if code is None:
            raise UnsupportedLanguageError(NAME, f"{tag}->{other}: Apertium has no code for {tag}")
        return code
