"""The notify worker end to end: chat messages on the real RabbitMQ, room state in the real
Redis, pushes to local fakes of the push services (tests/notify/fakes.py)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

import schemas
from tests.workers.amqp import channel, drain_queue, ready_count, wait_for, wait_for_async
from tests.workers.chat import chat_event, publish_events
from workers.notify.queues import DUE_QUEUE, QUEUE, SEND_QUEUE

from .conftest import WINDOW, Env
from .fakes import Reply

#: Long enough after a window for a notification that should not come to have come.
QUIET = WINDOW * 3


async def dead_letter(env: Env) -> AbstractIncomingMessage:
    """Wait for the one notification in the send queue's DLQ and take it."""
    async with channel(env.url) as ch:

        async def dead() -> bool:
            return await ready_count(ch, SEND_QUEUE + ".dlq") == 1

        await wait_for_async(dead, 15, "the dead letter")
        [letter] = await drain_queue(ch, SEND_QUEUE + ".dlq")
        return letter


async def post(env: Env, room: str, id_: int, text: str = "hello", sender: str = "alice") -> None:
    await env.posted(room)
    async with channel(env.url) as ch:
        await publish_events(ch, [(room, chat_event(id_, room, sender=sender, text=text))])


async def test_web_push_to_an_offline_member_encrypted_and_vapid_signed(env: Env) -> None:
    await env.members("general", "alice", "bob")
    await env.webpush("bob", "bob-laptop")
    await env.start()
    started = time.monotonic()
    await post(env, "general", 7412733457280073728, "see you at 5")
    await wait_for(lambda: len(env.services.pushes) == 1, 10, "one push")
    assert time.monotonic() - started >= WINDOW  # sent when the window closed
    [push] = env.services.pushes
    assert push.path == "/push/bob-laptop"
    assert push.payload == {
        "v": 1,
        "type": "notification",
        "user": "bob",
        "room": "general",
        "message_id": "7412733457280073728",
        "title": "alice",
        "body": "see you at 5",
        "sent_at": 1_700_000_000_000,
        "data": {"unread": 1, "sender": "alice"},
    }
    schemas.validate("push.notification.v1", orjson.dumps(push.payload))
    assert push.claims["aud"] == env.services.url
    assert push.claims["sub"] == "mailto:ops@chat.example"
    assert push.claims["exp"] > time.time() + 3600
    assert push.headers["TTL"] == "3600"
    assert push.headers["Topic"] == "general"
    assert push.headers["Urgency"] == "normal"
    await asyncio.sleep(QUIET)
    assert len(env.services.pushes) == 1  # the sender, alice, gets nothing


async def test_no_push_to_a_member_who_is_online(env: Env) -> None:
    await env.members("r1", "alice", "bob", "carol")
    await env.webpush("bob", "bob-phone")
    await env.webpush("carol", "carol-phone")
    await env.online("bob")
    app = await env.start()
    await post(env, "r1", 100)
    await wait_for(lambda: len(env.services.pushes) == 1, 10, "carol's push")
    await asyncio.sleep(QUIET)
    assert [p.path for p in env.services.pushes] == ["/push/carol-phone"]
    skipped = app.metrics.registry.get_sample_value(
        "stompgate_notify_skipped_total", {"reason": "online"}
    )
    assert skipped == 1


async def test_one_push_for_a_burst_of_ten_with_the_latest_preview_and_unread_count(
    env: Env,
) -> None:
    await env.members("r2", "alice", "bob")
    await env.webpush("bob", "bob-1")
    await env.start()
    for _ in range(10):
        await env.posted("r2")
    async with channel(env.url) as ch:
        events = [("r2", chat_event(500 + i, "r2", text=f"message {i}")) for i in range(10)]
        await publish_events(ch, events)
    await wait_for(lambda: len(env.services.pushes) >= 1, 10, "the push")
    await asyncio.sleep(QUIET)
    [push] = env.services.pushes
    assert push.payload["body"] == "message 9"
    assert push.payload["message_id"] == "509"
    assert push.payload["data"] == {"unread": 10, "sender": "alice"}


async def test_the_next_message_after_a_window_gets_a_window_of_its_own(env: Env) -> None:
    await env.members("r3", "alice", "bob")
    await env.webpush("bob", "b")
    await env.start()
    await post(env, "r3", 1, "first")
    await wait_for(lambda: len(env.services.pushes) == 1, 10, "first push")
    await post(env, "r3", 2, "second")
    await wait_for(lambda: len(env.services.pushes) == 2, 10, "second push")
    first, second = env.services.pushes
    assert (first.payload["body"], second.payload["body"]) == ("first", "second")
    assert second.payload["data"]["unread"] == 2


async def test_nothing_to_a_member_who_read_the_room_or_came_back_meanwhile(env: Env) -> None:
    await env.members("r4", "alice", "bob", "carol")
    await env.webpush("bob", "bob")
    await env.webpush("carol", "carol")
    await env.start()
    await post(env, "r4", 42)
    await env.read("bob", "r4", 42, 1)  # bob read it on another device before the window closed
    await env.online("carol")  # carol came back
    await asyncio.sleep(WINDOW + QUIET)
    assert env.services.pushes == []


async def test_mutes_are_respected(env: Env) -> None:
    await env.members("quiet", "alice", "bob")
    await env.members("loud", "alice", "bob")
    await env.webpush("bob", "bob")
    await env.store.set_muted("bob", "quiet", True)
    await env.start()
    await post(env, "quiet", 1)
    await post(env, "loud", 2)
    await wait_for(lambda: len(env.services.pushes) == 1, 10, "the loud room's push")
    await asyncio.sleep(QUIET)
    assert [p.payload["room"] for p in env.services.pushes] == ["loud"]
    await env.store.set_muted("bob", "quiet", False)
    await post(env, "quiet", 3)
    await wait_for(lambda: len(env.services.pushes) == 2, 10, "after unmuting")


@pytest.mark.parametrize("status", [410, 404])
async def test_a_gone_web_push_subscription_is_removed(env: Env, status: int) -> None:
    await env.members("r5", "alice", "bob")
    gone = await env.webpush("bob", "old-browser")
    kept = await env.webpush("bob", "new-browser")
    env.services.script("/push/old-browser", Reply(status, {"reason": "unsubscribed"}))
    app = await env.start()
    await post(env, "r5", 9)
    await wait_for(lambda: len(env.services.pushes) == 2, 10, "both tried")

    async def removed() -> bool:
        return await env.store.subscription(gone.id) is None

    await wait_for_async(removed, 10, "the gone subscription removed")
    assert await env.store.subscriptions("bob") == [kept]
    value = app.metrics.registry.get_sample_value(
        "stompgate_notify_subscriptions_removed_total", {"provider": "webpush"}
    )
    assert value == 1
    await asyncio.sleep(QUIET)
    assert len(env.services.pushes) == 2  # no retry of a gone one


async def test_the_webhook_gets_every_notification_signed(env: Env) -> None:
    await env.members("r6", "alice", "bob", "carol")
    await env.start(webhook_url=f"{env.services.url}/hook", webhook_secret="unused-here")
    await post(env, "r6", 77, "ping")
    await wait_for(lambda: len(env.services.hooks) == 2, 10, "two webhook calls")
    await asyncio.sleep(QUIET)
    assert sorted(h.payload["user"] for h in env.services.hooks) == ["bob", "carol"]
    assert all(h.status == 201 for h in env.services.hooks)  # the signature verified
    [hook] = [h for h in env.services.hooks if h.payload["user"] == "bob"]
    assert hook.headers["X-Stompgate-Event"] == "push.notification.v1"
    assert hook.headers["Content-Type"] == "application/json"
    assert abs(int(hook.headers["X-Stompgate-Timestamp"]) - time.time()) < 60


async def test_a_notification_that_keeps_failing_ends_in_the_dead_letter_queue(env: Env) -> None:
    await env.members("r7", "alice", "bob")
    await env.webpush("bob", "flaky")
    env.services.script("/push/flaky", *[Reply(503, {"error": "down"})] * 3)
    app = await env.start()
    await post(env, "r7", 11)
    letter = await dead_letter(env)
    async with channel(env.url) as ch:
        for queue in (QUEUE, DUE_QUEUE, SEND_QUEUE, QUEUE + ".dlq", DUE_QUEUE + ".dlq"):
            assert await ready_count(ch, queue) == 0
    assert len(env.services.pushes) == 3  # max_attempts
    assert letter.headers["x-dead-letter-reason"] == "exhausted"
    assert letter.headers["x-attempts"] == 3
    assert str(letter.headers["x-error"]).startswith("Unavailable: webpush: HTTP 503")
    note = schemas.decode(schemas.model("push.notification.v1"), letter.body)
    assert note.user == "bob"  # type: ignore[attr-defined]
    assert letter.headers["stompgate-push-target"]
    errors = app.metrics.registry.get_sample_value(
        "stompgate_notify_provider_errors_total", {"provider": "webpush", "error": "unavailable"}
    )
    assert errors == 3


async def test_a_refused_notification_is_dead_lettered_at_once(env: Env) -> None:
    await env.members("r8", "alice", "bob")
    await env.webpush("bob", "picky")
    env.services.script("/push/picky", Reply(413, {"error": "payload too large"}))
    await env.start()
    await post(env, "r8", 12)
    letter = await dead_letter(env)
    assert letter.headers["x-dead-letter-reason"] == "rejected"
    assert len(env.services.pushes) == 1
