"""A translation provider in the process (no HTTP), for the worker's tests and its benchmark:
it answers at once (or after ``latency`` seconds) with ``[<target>] <text>``, and fails with
"503" while ``down`` is set, as an HTTP provider whose service is out would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import permutations

from workers.translate.providers import (
    LanguagePair,
    ProviderUnavailableError,
    Translation,
)

LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "nl", "ru", "ja", "ko", "zh")


class EchoProvider:
    """`TranslationProvider` that tags texts with their target language."""

    max_batch = 1

    def __init__(self, *, name: str = "fake", latency: float = 0.0) -> None:
        self.name = name
        self.latency = latency
        self.down = False
        self.calls: list[tuple[str, str, str]] = []  # (text, source, target) answered
        self.refused = 0  # calls while down

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.down:
            self.refused += 1
            raise ProviderUnavailableError(self.name, "HTTP 503: service unavailable")
        self.calls += [(text, source, target) for text in texts]
        return [Translation(f"[{target}] {text}", source, target, self.name) for text in texts]

    async def pairs(self) -> frozenset[LanguagePair]:
        return frozenset(LanguagePair(s, t) for s, t in permutations(LANGUAGES, 2))
