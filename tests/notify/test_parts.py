"""The notify worker's parts on their own: settings, the gate, collapse windows in Redis,
previews, webhook signatures, VAPID keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.models import PushNotification
from tests.translate.helpers import Clock
from workers.notify.collapse import Collapser, Latest
from workers.notify.gate import ProviderGate
from workers.notify.notifier import preview
from workers.notify.providers import RateLimited, Target, Unavailable
from workers.notify.settings import GateLimits, NotifySettings
from workers.notify.webhook import signature, verify
from workers.notify.webpush import load_vapid_key, public_key_b64, topic_for

from .conftest import VAPID_KEY

NOTE = PushNotification(
    v=1, type="notification", user="bob", room="r", message_id="1", title="a", body="b",
    sent_at=1,
)  # fmt: skip
TARGET = Target("s1", "fake", "addr")


class FakeProvider:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_with: list[Exception] = []
        self.hold = 0.0

    async def send(self, target: Target, notification: PushNotification, body: bytes) -> None:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.hold)
            if self.fail_with:
                raise self.fail_with.pop(0)
        finally:
            self.in_flight -= 1


# -- settings -------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    s = NotifySettings.from_env(
        {
            "STOMPGATE_NOTIFY_WINDOW": "2.5",
            "STOMPGATE_NOTIFY_BACKOFF": "0.5, 2,10",
            "STOMPGATE_NOTIFY_WEBHOOK_URL": "http://sink/hook",
            "STOMPGATE_NOTIFY_WEBHOOK_SECRET": "s3cret",
            "STOMPGATE_NOTIFY_WEBPUSH_HOSTS": "push.example, other.example",
            "STOMPGATE_NOTIFY_CONCURRENCY": "3",
            "STOMPGATE_REDIS_PREFIX": "x:",
        }
    )
    assert s.window == 2.5
    assert s.backoff == (0.5, 2.0, 10.0)
    assert s.webpush_hosts == ("push.example", "other.example")
    assert s.limits.concurrency == 3
    assert s.redis_prefix == "x:"
    assert "s3cret" not in repr(s)
    assert NotifySettings.from_env({}) == NotifySettings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STOMPGATE_NOTIFY_WINDOW": "0"}, "STOMPGATE_NOTIFY_WINDOW must be > 0"),
        ({"STOMPGATE_NOTIFY_CONCURRENCY": "1.5"}, "STOMPGATE_NOTIFY_CONCURRENCY must be a whole"),
        ({"STOMPGATE_NOTIFY_BACKOFF": "1,x"}, "STOMPGATE_NOTIFY_BACKOFF must be numbers"),
        ({"STOMPGATE_NOTIFY_WEBHOOK_URL": "http://h"}, "needs STOMPGATE_NOTIFY_WEBHOOK_SECRET"),
        ({"STOMPGATE_NOTIFY_APNS_KEY": "k.p8"}, "STOMPGATE_NOTIFY_APNS_KEY needs"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NotifySettings.from_env(env)


# -- the gate -------------------------------------------------------------------------------


async def test_the_breaker_opens_after_failures_and_stops_calling() -> None:
    provider, clock = FakeProvider(), Clock()
    gate = ProviderGate(provider, GateLimits(breaker_failures=2, breaker_cooldown=30), clock=clock)
    provider.fail_with = [Unavailable("fake", "503"), Unavailable("fake", "503")]
    for _ in range(2):
        with pytest.raises(Unavailable):
            await gate.send(TARGET, NOTE, b"{}")
    with pytest.raises(Unavailable, match="circuit open") as opened:
        await gate.send(TARGET, NOTE, b"{}")
    assert opened.value.retry_after == pytest.approx(30)
    assert provider.calls == 2
    clock.now += 31
    await gate.send(TARGET, NOTE, b"{}")  # the probe succeeds and closes it
    await gate.send(TARGET, NOTE, b"{}")
    assert provider.calls == 4


async def test_refused_credentials_open_the_breaker_at_once() -> None:
    provider = FakeProvider()
    gate = ProviderGate(provider, GateLimits(breaker_failures=5), clock=Clock())
    provider.fail_with = [Unavailable("fake", "401", credentials=True)]
    with pytest.raises(Unavailable):
        await gate.send(TARGET, NOTE, b"{}")
    with pytest.raises(Unavailable, match="circuit open"):
        await gate.send(TARGET, NOTE, b"{}")
    assert provider.calls == 1


async def test_a_long_retry_after_pauses_every_send_without_a_request() -> None:
    provider, clock = FakeProvider(), Clock()
    gate = ProviderGate(provider, GateLimits(max_retry_wait=5), clock=clock)
    provider.fail_with = [RateLimited("fake", "429", retry_after=60)]
    with pytest.raises(RateLimited):
        await gate.send(TARGET, NOTE, b"{}")
    with pytest.raises(RateLimited, match="asked us to wait") as paused:
        await gate.send(TARGET, NOTE, b"{}")
    assert paused.value.retry_after == pytest.approx(60)
    assert provider.calls == 1
    clock.now += 61
    await gate.send(TARGET, NOTE, b"{}")
    assert provider.calls == 2


async def test_concurrency_is_bounded_per_provider() -> None:
    provider = FakeProvider()
    provider.hold = 0.02
    gate = ProviderGate(provider, GateLimits(concurrency=3))
    await asyncio.gather(*(gate.send(TARGET, NOTE, b"{}") for _ in range(20)))
    assert provider.calls == 20
    assert provider.max_in_flight == 3


# -- collapse windows -----------------------------------------------------------------------


@pytest.fixture
async def collapser(redis_url: str, redis_prefix: str) -> AsyncIterator[Collapser]:
    client = aioredis.Redis.from_url(redis_url)
    yield Collapser(client, redis_prefix)
    keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def latest(id_: int, text: str = "t") -> Latest:
    return Latest(id_, "alice", text, 1000 + id_)


async def test_a_window_opens_once_and_carries_the_latest(collapser: Collapser) -> None:
    assert await collapser.note(["bob", "carol"], "r", latest(5)) == [
        ("bob", "0000000000000000005"),
        ("carol", "0000000000000000005"),
    ]
    assert await collapser.note(["bob"], "r", latest(7, "newer")) == []
    assert await collapser.note(["bob"], "r", latest(6, "older")) == []  # out of order
    assert await collapser.note(["bob"], "r", latest(5)) == [("bob", "0000000000000000005")]
    token = "0000000000000000005"
    assert await collapser.peek("bob", "r", token) == latest(7, "newer")
    assert await collapser.peek("bob", "r", "0000000000000000001") is None  # stale job
    assert await collapser.commit("bob", "r", token, latest(7, "newer")) is None
    assert await collapser.peek("bob", "r", token) is None  # closed
    assert await collapser.note(["bob"], "r", latest(9)) == [("bob", "0000000000000000009")]


async def test_a_message_after_the_peek_gets_a_window_of_its_own(collapser: Collapser) -> None:
    [(_, token)] = await collapser.note(["bob"], "r", latest(1))
    peeked = await collapser.peek("bob", "r", token)
    assert peeked == latest(1)
    assert await collapser.note(["bob"], "r", latest(2, "meanwhile")) == []
    again = await collapser.commit("bob", "r", token, peeked)
    assert again == "0000000000000000002"
    assert await collapser.peek("bob", "r", again) == latest(2, "meanwhile")


# -- small things ---------------------------------------------------------------------------


def test_previews_are_cut_at_a_word_count_of_characters() -> None:
    assert preview("short", 120) == "short"
    assert preview("a" * 200, 10) == "a" * 10 + "\u2026"
    assert preview("secret", 0) == ""
    assert len(preview("x" * 5000, 5000)) == 1000


def test_webhook_signatures_cover_body_and_timestamp() -> None:
    secret, body = b"k", b'{"user":"bob"}'
    header = signature(secret, "1700000000", body)
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify(secret, "1700000000", body, header, now=1700000100)
    assert not verify(secret, "1700000000", body + b" ", header, now=1700000100)
    assert not verify(secret, "1700000001", body, header, now=1700000100)
    assert not verify(secret, "1700000000", body, header, now=1700000000 + 301)  # replayed
    assert not verify(b"other", "1700000000", body, header, now=1700000100)


def test_vapid_keys_load_from_raw_or_pem_and_topics_fit() -> None:
    key = load_vapid_key(VAPID_KEY)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert public_key_b64(load_vapid_key(pem)) == public_key_b64(key)
    assert len(public_key_b64(key)) == 87
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="P-256"):
        load_vapid_key(other.decode())
    assert topic_for("general") == "general"
    long_room = "r" * 64
    assert len(topic_for(long_room)) == 32
    assert topic_for(long_room) != topic_for("r" * 63)


async def test_the_demo_sink_verifies_what_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from aiohttp import ClientSession, web

    from scripts.webhook_sink import make_app
    from tests.support.gateway_proc import free_port

    runner = web.AppRunner(make_app(b"demo"), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    body = b'{"user":"bob","room":"r","title":"alice","body":"hi","data":{"unread":2}}'
    stamp = str(int(time.time()))
    try:
        async with ClientSession() as http:
            headers = {"X-Stompgate-Timestamp": stamp,
                       "X-Stompgate-Signature": signature(b"demo", stamp, body)}  # fmt: skip
            async with http.post(f"http://127.0.0.1:{port}/", data=body, headers=headers) as r:
                assert r.status == 204
            headers["X-Stompgate-Signature"] = signature(b"wrong", stamp, body)
            async with http.post(f"http://127.0.0.1:{port}/", data=body, headers=headers) as r:
                assert r.status == 401
    finally:
        await runner.cleanup()
    out = capsys.readouterr().out
    assert "push for bob in room r: alice: 'hi' (2 unread)" in out
    assert "refused a request" in out
