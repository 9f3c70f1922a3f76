"""Audience: the languages a room needs, read from real SQLite stores and reused a while."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from store import Member, Room, SQLiteProfileStore, SQLiteRoomStore
from tests.translate.helpers import Clock
from workers.translate.audience import Audience, usable


class CountingRooms(SQLiteRoomStore):
    def __init__(self) -> None:
        super().__init__(":memory:")
        self.reads = 0
        self.fail = False

    async def room(self, room_id: str) -> Room | None:
        self.reads += 1
        await asyncio.sleep(0.01)  # long enough for concurrent asks to meet
        if self.fail:
            raise OSError("store down")
        return await super().room(room_id)


@pytest.fixture
async def stores() -> AsyncIterator[tuple[CountingRooms, SQLiteProfileStore]]:
    rooms, profiles = CountingRooms(), SQLiteProfileStore(":memory:")
    await rooms.open()
    await profiles.open()
    await rooms.create_room(
        Room("g", "group", "G", "pt_br", "", 1),
        [Member("g", user, "member", 1) for user in ("ana", "ben", "cy", "dee", "eli")],
    )
    await profiles.set_lang("ana", "es", at=1)
    await profiles.record_token_lang("ana", "de", at=1)  # ana's choice wins
    await profiles.record_token_lang("ben", "fr", at=1)
    await profiles.set_lang("cy", "klingon", at=1)  # no provider takes it
    await profiles.set_lang("dee", "ES", at=1)
    yield rooms, profiles
    await rooms.close()
    await profiles.close()


def test_usable_tags_are_normalized_and_others_dropped() -> None:
    assert usable(["es", "pt_br", "EN-us", "", "eng", "x-klingon", "zh-hant"]) == {
        "es",
        "pt-BR",
        "en-US",
        "zh-Hant",
    }


async def test_a_room_needs_its_own_its_members_and_the_targets(
    stores: tuple[CountingRooms, SQLiteProfileStore],
) -> None:
    rooms, profiles = stores
    audience = Audience(rooms, profiles, targets=["it"])
    assert await audience.languages("g") == {"pt-BR", "es", "fr", "it"}
    assert await audience.languages("not-made") == {"it"}
    assert await audience.language_of("ana") == "es"
    assert await audience.language_of("ben") == "fr"
    assert await audience.language_of("cy") is None
    assert await audience.language_of("nobody") is None


async def test_answers_are_reused_for_the_ttl_and_a_burst_reads_once(
    stores: tuple[CountingRooms, SQLiteProfileStore],
) -> None:
    rooms, profiles = stores
    clock = Clock()
    audience = Audience(rooms, profiles, ttl=5.0, clock=clock)
    answers = await asyncio.gather(*(audience.languages("g") for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert rooms.reads == 1
    await profiles.set_lang("eli", "nl", at=2)
    clock.now += 4.9
    assert "nl" not in await audience.languages("g")
    clock.now += 0.2
    assert "nl" in await audience.languages("g")
    assert rooms.reads == 2


async def test_a_failed_read_is_everyone_s_and_the_next_ask_reads_again(
    stores: tuple[CountingRooms, SQLiteProfileStore],
) -> None:
    rooms, profiles = stores
    audience = Audience(rooms, profiles)
    rooms.fail = True
    results = await asyncio.gather(
        *(audience.languages("g") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    assert rooms.reads == 1
    rooms.fail = False
    assert "es" in await audience.languages("g")


async def test_at_most_max_entries_are_kept(
    stores: tuple[CountingRooms, SQLiteProfileStore],
) -> None:
    rooms, profiles = stores
    audience = Audience(rooms, profiles, max_entries=2)
    for room in ("a", "b", "c", "a"):
        await audience.languages(room)
    assert rooms.reads == 4  # "a" was forgotten when "c" came
