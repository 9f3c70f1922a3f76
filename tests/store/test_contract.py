"""The one store test suite every MessageStore backend must pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import (
    Conflict,
    MessageCounts,
    MessageStore,
    SQLiteStore,
    StoreClosedError,
    StoreConflictError,
    StoredMessage,
)
from store.base import MAX_MESSAGE_ID

from .backends import BACKENDS, opened_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MessageStore]:
    async with opened_store(request.param, tmp_path) as s:
        yield s


def msg(
    id_: int, room: str = "r1", sender: str = "alice", client_id: str | None = None
) -> StoredMessage:
    cid = client_id if client_id is not None else f"c{id_}"
    event = f'{{"id":{id_},"room":"{room}","sender":"{sender}","client_id":"{cid}"}}'.encode()
    return StoredMessage(
        id=id_,
        room=room,
        sender=sender,
        client_id=cid,
        sent_at=1_700_000_000_000 + id_ % 100_000,
        event=event,
    )


def ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


async def test_protocol_conformance(store: MessageStore) -> None:
    assert isinstance(store, MessageStore)


async def test_insert_returns_newly_stored_and_round_trips(store: MessageStore) -> None:
    odd = StoredMessage(
        id=7, room="r1", sender="ünï", client_id="x\x00y", sent_at=-1, event=b'{"t":"\xc3\xa9\x00"}'
    )
    assert await store.insert_many([msg(1), msg(2), odd]) == 3
    assert await store.history("r1") == [odd, msg(2), msg(1)]


async def test_empty_insert(store: MessageStore) -> None:
    assert await store.insert_many([]) == 0
    assert await store.count() == 0


async def test_true_duplicate_id_skipped(store: MessageStore) -> None:
    assert await store.insert_many([msg(1)]) == 1
    assert await store.insert_many([msg(1), msg(2)]) == 1
    assert await store.history("r1") == [msg(2), msg(1)]


@pytest.mark.parametrize(
    "clash",
    [
        msg(1, sender="bob", client_id="other"),  # another client id (and sender)
        msg(1, client_id="other"),  # another client id
        msg(1, room="r2"),  # the same client id in another room
        msg(1, sender="bob"),  # the same client id from another sender
    ],
    ids=["sender-and-client-id", "client-id", "room", "sender"],
)
async def test_same_id_as_another_message_is_a_conflict(
    store: MessageStore, clash: StoredMessage
) -> None:
    assert await store.insert_many([msg(1)]) == 1
    with pytest.raises(StoreConflictError) as raised:
        await store.insert_many([clash, msg(2)])
    assert raised.value.stored == 1  # the rest of the batch is in
    assert raised.value.conflicts == (Conflict(clash, "r1", "alice", "c1"),)
    assert await store.history("r1") == [msg(2), msg(1)]  # the first message intact
    assert await store.count() == 2


async def test_duplicate_sender_client_id_skipped(store: MessageStore) -> None:
    assert await store.insert_many([msg(1, client_id="same")]) == 1
    retry = msg(2, client_id="same")  # a client retry: new snowflake, same client message id
    assert await store.insert_many([retry]) == 0
    assert ids(await store.history("r1")) == [1]
    # the same client id from another sender is a different message
    assert await store.insert_many([msg(3, sender="bob", client_id="same")]) == 1
    assert await store.count() == 2


async def test_duplicates_within_one_batch(store: MessageStore) -> None:
    batch = [msg(1), msg(1), msg(2, client_id="c1"), msg(3)]
    assert await store.insert_many(batch) == 2
    assert ids(await store.history("r1")) == [3, 1]


async def test_conflict_within_one_batch(store: MessageStore) -> None:
    clash = msg(3, client_id="z")
    with pytest.raises(StoreConflictError) as raised:
        await store.insert_many([msg(3), msg(3), clash, msg(4)])
    assert raised.value.stored == 2
    assert raised.value.conflicts == (Conflict(clash, "r1", "alice", "c3"),)
    assert ids(await store.history("r1")) == [4, 3]


async def test_reinserting_a_batch_is_a_no_op(store: MessageStore) -> None:
    batch = [msg(i) for i in range(1, 51)]
    assert await store.insert_many(batch) == 50
    assert await store.insert_many(batch) == 0
    assert await store.insert_many(batch[::-1]) == 0
    assert await store.count("r1") == 50


async def test_history_default_is_newest_first(store: MessageStore) -> None:
    await store.insert_many([msg(i) for i in (5, 1, 9, 3, 7)])
    assert ids(await store.history("r1")) == [9, 7, 5, 3, 1]
    assert ids(await store.history("r1", limit=2)) == [9, 7]
    assert await store.history("r1", limit=0) == []
    assert await store.history("nobody") == []


async def test_history_before_is_newest_first_below(store: MessageStore) -> None:
    await store.insert_many([msg(i) for i in range(1, 11)])
    assert ids(await store.history("r1", before=6, limit=3)) == [5, 4, 3]
    assert ids(await store.history("r1", before=2)) == [1]
    assert await store.history("r1", before=1) == []


async def test_history_after_is_oldest_first_above(store: MessageStore) -> None:
    await store.insert_many([msg(i) for i in range(1, 11)])
    assert ids(await store.history("r1", after=6)) == [7, 8, 9, 10]
    assert ids(await store.history("r1", after=0, limit=3)) == [1, 2, 3]
    assert await store.history("r1", after=10) == []


async def test_history_between_is_oldest_first(store: MessageStore) -> None:
    await store.insert_many([msg(i) for i in range(1, 11)])
    assert ids(await store.history("r1", after=3, before=8)) == [4, 5, 6, 7]
    assert ids(await store.history("r1", after=3, before=8, limit=2)) == [4, 5]


async def test_history_is_per_room(store: MessageStore) -> None:
    await store.insert_many([msg(i, room="a" if i % 2 else "b") for i in range(1, 21)])
    assert ids(await store.history("a", limit=3)) == [19, 17, 15]
    assert ids(await store.history("b", after=10, limit=3)) == [12, 14, 16]
    assert ids(await store.history("b", before=5)) == [4, 2]


async def test_keyset_pages_cover_the_room_without_gap_or_duplicate(store: MessageStore) -> None:
    all_ids = list(range(1000, 1230, 3))
    await store.insert_many([msg(i) for i in all_ids])
    await store.insert_many([msg(i, room="other") for i in range(1, 100)])

    backwards: list[int] = []
    page = await store.history("r1", limit=7)
    while page:
        backwards += ids(page)
        page = await store.history("r1", before=page[-1].id, limit=7)
    assert backwards == sorted(all_ids, reverse=True)

    forwards: list[int] = []
    cursor = 0
    while page := await store.history("r1", after=cursor, limit=7):
        forwards += ids(page)
        cursor = page[-1].id
    assert forwards == all_ids


async def test_count(store: MessageStore) -> None:
    assert await store.count() == 0
    assert await store.count("a") == 0
    await store.insert_many([msg(i, room="a") for i in range(1, 4)])
    await store.insert_many([msg(i, room="b") for i in range(4, 6)])
    assert await store.count("a") == 3
    assert await store.count("b") == 2
    assert await store.count("c") == 0
    assert await store.count() == 5


async def test_large_batch_with_duplicates(store: MessageStore) -> None:
    first = [msg(i, room=f"room{i % 7}") for i in range(1, 5001)]
    assert await store.insert_many(first) == 5000
    # half of it again, plus 2,500 new ones, plus client retries of old client ids
    again = first[2500:] + [msg(i, room="room0") for i in range(5001, 7501)]
    retries = [msg(10_000 + i, room="room1", client_id=f"c{i}") for i in range(1, 101)]
    assert await store.insert_many(again + retries) == 2500
    assert await store.count() == 7500
    assert await store.count("room0") == len([i for i in range(1, 5001) if i % 7 == 0]) + 2500


async def test_extreme_ids(store: MessageStore) -> None:
    await store.insert_many([msg(MAX_MESSAGE_ID), msg(1), msg(2**53 + 1)])
    assert ids(await store.history("r1")) == [MAX_MESSAGE_ID, 2**53 + 1, 1]
    assert ids(await store.history("r1", after=2**53)) == [2**53 + 1, MAX_MESSAGE_ID]


async def test_negative_limit_rejected(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.history("r1", limit=-1)


async def test_closed_store_refuses(store: MessageStore) -> None:
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.insert_many([msg(1)])
    with pytest.raises(StoreClosedError):
        await store.count()
    await store.open()  # the fixture closes it again


async def test_sqlite_file_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "dir" / "m.db")
    first = SQLiteStore(path)
    await first.open()
    await first.insert_many([msg(1), msg(2)])
    await first.close()
    again = SQLiteStore(path)
    await again.open()
    try:
        assert ids(await again.history("r1")) == [2, 1]
        assert await again.insert_many([msg(2), msg(3)]) == 1
    finally:
        await again.close()


# -- MessageCounts: what exact unread counts read --------------------------------------------


def counts(store: MessageStore) -> MessageCounts:
    assert isinstance(store, MessageCounts)
    return store


async def test_count_upto_counts_a_rooms_messages_at_or_below_an_id(store: MessageStore) -> None:
    await store.insert_many([msg(i) for i in (2, 4, 6, 8)])
    await store.insert_many([msg(i, room="other") for i in (1, 3, 5)])
    assert await counts(store).count("r1", upto=5) == 2
    assert await counts(store).count("r1", upto=6) == 3
    assert await counts(store).count("r1", upto=1) == 0
    assert await counts(store).count("r1", upto=MAX_MESSAGE_ID) == 4
    assert await counts(store).count("nobody", upto=9) == 0
    with pytest.raises(ValueError, match="give the room"):
        await counts(store).count(upto=3)


async def test_newest_id_of_a_sender_in_a_room(store: MessageStore) -> None:
    await store.insert_many([msg(1), msg(2, sender="bob"), msg(3), msg(4, sender="bob")])
    await store.insert_many([msg(9, room="other")])
    assert await counts(store).newest_id("r1", sender="alice") == 3
    assert await counts(store).newest_id("r1", sender="bob") == 4
    assert await counts(store).newest_id("r1", sender="carol") is None
    assert await counts(store).newest_id("other", sender="bob") is None
