"""The three HTTP providers as test cases: a fake, a provider on it, and the fake's replies
for "slow down", "down" and "quota used up" in that service's own words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from tests.translate import fakes
from tests.translate.fakes import GOOD_KEY, FakeService, Reply, papago_error
from workers.translate.deepl import DeepLProvider
from workers.translate.libretranslate import LibreTranslateProvider
from workers.translate.papago import PapagoProvider
from workers.translate.providers import TranslationProvider

MakeProvider = Callable[[aiohttp.ClientSession, str, str], TranslationProvider]


@dataclass(frozen=True)
class Case:
    name: str
    fake: Callable[[], FakeService]
    provider: MakeProvider  # (session, base url, key)
    rate_limited: Reply  # 429 with Retry-After: 1
    unavailable: Reply
    quota: Reply

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "deepl",
        fakes.deepl,
        lambda s, url, key: DeepLProvider(s, key, base_url=url, timeout=5),
        Reply(429, {"message": "Too many requests"}, {"Retry-After": "1"}),
        Reply(503, {"message": "Service temporarily unavailable"}),
        Reply(456, {"message": "Quota exceeded. The character limit has been reached."}),
    ),
    Case(
        "libretranslate",
        fakes.libretranslate,
        lambda s, url, key: LibreTranslateProvider(s, url, api_key=key, timeout=5),
        Reply(429, {"error": "Slowdown: 30 per 1 minute"}, {"Retry-After": "1"}),
        Reply(500, {"error": "Cannot translate text: model crashed"}),
        Reply(403, {"error": "Too many request limits violations"}),
    ),
    Case(
        "papago",
        fakes.papago,
        lambda s, url, key: PapagoProvider(s, "client-id", key, base_url=url + "/nmt/v1"),
        papago_error(429, "420", "Rate Limited", **{"Retry-After": "1"}),
        papago_error(503, "500", "Endpoint Error"),
        papago_error(429, "400", "Quota Exceeded"),
    ),
]

BY_NAME = {case.name: case for case in CASES}
GOOD = GOOD_KEY
BAD = "wrong-key"
