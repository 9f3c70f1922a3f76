"""FCM (HTTP v1, OAuth2 service account) and APNs (HTTP/2, ES256 provider token) through the
notify worker, against local fakes that speak their documented HTTP and errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.workers.amqp import channel, ready_count, wait_for, wait_for_async
from workers.notify.queues import SEND_QUEUE

from .conftest import KEY_ID, TEAM, TOPIC, Env
from .fakes import FakeApns, Reply, fcm_error
from .test_worker import QUIET, dead_letter, post

DEVICE = "a1" * 32


@pytest.fixture
async def apns(env: Env) -> FakeApns:
    fake = FakeApns(env.tmp, TEAM, KEY_ID, TOPIC)
    await fake.start()
    env.closers.append(fake.close)  # after the worker and its HTTP/2 client are gone
    return fake


async def removed(env: Env, subscription_id: str) -> None:
    async def gone() -> bool:
        return await env.store.subscription(subscription_id) is None

    await wait_for_async(gone, 10, "the subscription removed")


# -- FCM ------------------------------------------------------------------------------------


async def test_fcm_exchanges_the_service_account_for_a_token_once_and_sends(env: Env) -> None:
    await env.members("r1", "alice", "bob")
    await env.subscribe("bob", "fcm", "fcm-token-bob")
    await env.start()
    await post(env, "r1", 1, "hi")
    await wait_for(lambda: len(env.services.fcm) == 1, 10, "the FCM send")
    await post(env, "r1", 2, "again")
    await wait_for(lambda: len(env.services.fcm) == 2, 10, "the second send")
    assert len(env.services.tokens) == 1  # the access token is reused
    [token] = env.services.tokens
    assert token.claims["iss"] == "push@chat-app.iam.gserviceaccount.com"
    assert token.claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert token.claims["exp"] - token.claims["iat"] == 3600
    first = env.services.fcm[0]
    assert first.path == "/v1/projects/chat-app/messages:send"
    message = first.payload["message"]
    assert message["token"] == "fcm-token-bob"
    assert message["notification"] == {"title": "alice", "body": "hi"}
    assert message["data"] == {
        "room": "r1",
        "message_id": "1",
        "user": "bob",
        "sent_at": "1700000000000",
        "unread": "1",
        "sender": "alice",
    }
    assert message["android"]["collapse_key"] == "r1"


async def test_fcm_unregistered_removes_the_token(env: Env) -> None:
    await env.members("r2", "alice", "bob")
    sub = await env.subscribe("bob", "fcm", "stale-token")
    env.services.script("/v1/", fcm_error("NOT_FOUND", "UNREGISTERED", http=404))
    await env.start()
    await post(env, "r2", 5)
    await removed(env, sub.id)
    await asyncio.sleep(QUIET)
    assert len(env.services.fcm) == 1


async def test_fcm_429_waits_its_retry_after_and_503_is_retried(env: Env) -> None:
    await env.members("r3", "alice", "bob")
    await env.subscribe("bob", "fcm", "busy-token")
    env.services.script(
        "/v1/",
        fcm_error("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", http=429, retry_after="1"),
        fcm_error("UNAVAILABLE", "UNAVAILABLE", http=503),
    )
    await env.start(max_attempts=5)
    await post(env, "r3", 6)
    await wait_for(lambda: [r.status for r in env.services.fcm] == [429, 503, 201], 20, "3 tries")
    first, _, third = env.services.fcm
    assert third.payload == first.payload
    async with channel(env.url) as ch:
        assert await ready_count(ch, SEND_QUEUE + ".dlq") == 0


async def test_fcm_that_keeps_failing_is_dead_lettered(env: Env) -> None:
    await env.members("r4", "alice", "bob")
    await env.subscribe("bob", "fcm", "t")
    env.services.script("/v1/", *[fcm_error("INTERNAL", "INTERNAL", http=500)] * 3)
    await env.start()
    await post(env, "r4", 7)
    letter = await dead_letter(env)
    assert letter.headers["x-dead-letter-reason"] == "exhausted"
    assert len(env.services.fcm) == 3


# -- APNs -----------------------------------------------------------------------------------


async def test_apns_over_http2_with_a_provider_token(env: Env, apns: FakeApns) -> None:
    await env.members("r5", "alice", "bob")
    await env.subscribe("bob", "apns", DEVICE)
    await env.start(env.providers(apns=apns))
    await post(env, "r5", 8, "over h2")
    await wait_for(lambda: len(apns.requests) == 1, 10, "the APNs request")
    [request] = apns.requests
    assert apns.versions == ["2"]
    assert request.status == 200
    assert request.path == f"/3/device/{DEVICE}"
    assert request.claims["iss"] == TEAM
    assert request.headers["apns-topic"] == TOPIC
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-collapse-id"] == "r5"
    assert request.payload == {
        "aps": {
            "alert": {"title": "alice", "body": "over h2"},
            "badge": 1,
            "sound": "default",
            "thread-id": "r5",
        },
        "room": "r5",
        "message_id": "8",
        "sender": "alice",
    }


@pytest.mark.parametrize(("status", "reason"), [(410, "Unregistered"), (400, "BadDeviceToken")])
async def test_apns_gone_device_tokens_are_removed(
    env: Env, apns: FakeApns, status: int, reason: str
) -> None:
    await env.members("r6", "alice", "bob")
    sub = await env.subscribe("bob", "apns", DEVICE)
    apns.script(Reply(status, {"reason": reason, "timestamp": 1700000000000}))
    await env.start(env.providers(apns=apns))
    await post(env, "r6", 9)
    await removed(env, sub.id)
    await asyncio.sleep(QUIET)
    assert len(apns.requests) == 1


async def test_apns_too_many_requests_is_retried(env: Env, apns: FakeApns) -> None:
    await env.members("r7", "alice", "bob")
    await env.subscribe("bob", "apns", DEVICE)
    apns.script(Reply(429, {"reason": "TooManyRequests"}, {"Retry-After": "1"}))
    await env.start(env.providers(apns=apns), max_attempts=5)
    await post(env, "r7", 10)
    await wait_for(lambda: [r.status for r in apns.requests] == [429, 200], 20, "2 tries")
    assert apns.versions == ["2", "2"]
