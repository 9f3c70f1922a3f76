"""The push-subscription suite every PushStore backend must pass (store/push.py's contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import (
    PushStore,
    PushSubscription,
    SQLitePushStore,
    SQLiteStore,
    StoreClosedError,
    StoredMessage,
    new_subscription,
    open_push_store,
    subscription_id,
)

from .backends import BACKENDS, opened_push_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushStore]:
    async with opened_push_store(request.param, tmp_path) as s:
        yield s


def web(user: str = "bob", n: int = 1, at: int = 1000) -> PushSubscription:
    return new_subscription(
        user,
        "webpush",
        f"https://push.example/{n}",
        p256dh=f"key{n}",
        auth=f"auth{n}",
        created_at=at,
    )


async def test_protocol_conformance(store: PushStore) -> None:
    assert isinstance(store, PushStore)


async def test_save_list_find_and_delete(store: PushStore) -> None:
    a, b = web(n=1, at=1000), web(n=2, at=2000)
    fcm = new_subscription("bob", "fcm", "token-1", created_at=1500)
    other = new_subscription("carol", "apns", "ab" * 32, created_at=500)
    for s in (b, a, fcm, other):
        assert await store.save_subscription(s) is True
    assert await store.subscriptions("bob") == [a, fcm, b]  # oldest first
    assert await store.subscriptions("carol") == [other]
    assert await store.subscriptions("nobody") == []
    assert await store.subscription(fcm.id) == fcm
    assert await store.subscription("missing") is None
    assert await store.delete_subscription(fcm.id, user="carol") is False  # not hers
    assert await store.delete_subscription(fcm.id, user="bob") is True
    assert await store.delete_subscription(fcm.id) is False  # gone already
    assert await store.delete_subscription(other.id) is True  # the worker: any user
    assert await store.subscriptions("bob") == [a, b]
    assert await store.subscription(other.id) is None


async def test_registering_again_keeps_the_id_and_first_time_and_updates_the_keys(
    store: PushStore,
) -> None:
    first = web(n=1, at=1000)
    assert await store.save_subscription(first) is True
    again = new_subscription(
        "bob", "webpush", first.address, p256dh="new-key", auth="new-auth", created_at=9999
    )
    assert again.id == first.id
    assert await store.save_subscription(again) is False
    [kept] = await store.subscriptions("bob")
    assert kept == PushSubscription(
        id=first.id,
        user="bob",
        kind="webpush",
        address=first.address,
        p256dh="new-key",
        auth="new-auth",
        created_at=1000,
    )


async def test_the_id_is_derived_from_user_kind_and_address() -> None:
    assert subscription_id("bob", "fcm", "t") == subscription_id("bob", "fcm", "t")
    ids = {
        subscription_id("bob", "fcm", "t"),
        subscription_id("carol", "fcm", "t"),
        subscription_id("bob", "apns", "t"),
        subscription_id("bob", "fcm", "u"),
    }
    assert len(ids) == 4
    assert all(len(i) == 22 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


async def test_mutes_are_per_user_and_room_and_idempotent(store: PushStore) -> None:
    assert await store.muted_rooms("bob") == []
    await store.set_muted("bob", "r2", True)
    await store.set_muted("bob", "r1", True)
    await store.set_muted("bob", "r1", True)
    await store.set_muted("carol", "r3", True)
    assert await store.muted_rooms("bob") == ["r1", "r2"]
    assert await store.is_muted("bob", "r1") is True
    assert await store.is_muted("bob", "r3") is False
    assert await store.is_muted("carol", "r3") is True
    await store.set_muted("bob", "r1", False)
    await store.set_muted("bob", "r1", False)
    assert await store.muted_rooms("bob") == ["r2"]
    assert await store.is_muted("bob", "r1") is False


async def test_unicode_users_round_trip(store: PushStore) -> None:
    s = new_subscription("ünï:κ", "fcm", "tök/en", created_at=1)
    await store.save_subscription(s)
    await store.set_muted("ünï:κ", "room-1", True)
    assert await store.subscriptions("ünï:κ") == [s]
    assert await store.muted_rooms("ünï:κ") == ["room-1"]


async def test_use_before_open_or_after_close_raises(tmp_path: Path) -> None:
    store = SQLitePushStore(str(tmp_path / "p.db"))
    with pytest.raises(StoreClosedError):
        await store.subscriptions("bob")
    await store.open()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.is_muted("bob", "r")


async def test_it_shares_the_file_with_the_messages_and_survives_a_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/var/chat.db"
    messages = SQLiteStore(str(tmp_path / "var" / "chat.db"))
    push = open_push_store(url)
    await messages.open()
    await push.open()
    try:
        await push.save_subscription(web())
        await push.set_muted("bob", "r1", True)
        event = b'{"id":"1"}'
        await messages.insert_many(
            [StoredMessage(id=1, room="r1", sender="a", client_id="c", sent_at=1, event=event)]
        )
    finally:
        await push.close()
        await messages.close()
    again = open_push_store(url)
    await again.open()
    try:
        assert await again.subscriptions("bob") == [web()]
        assert await again.is_muted("bob", "r1")
    finally:
        await again.close()


def test_the_factory_picks_the_backend() -> None:
    assert isinstance(open_push_store("sqlite://:memory:"), SQLitePushStore)
    with pytest.raises(ValueError, match="unsupported store URL scheme 'redis'"):
        open_push_store("redis://x")
