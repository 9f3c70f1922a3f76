"""The one profile-store suite every ProfileStore backend must pass (MongoDB when MONGODB_URI
is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import Profile, ProfileStore, SQLiteProfileStore, SQLiteRoomStore, StoreClosedError

from .backends import BACKENDS, opened_profile_store


@pytest.fixture(params=BACKENDS)
async def profiles(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProfileStore]:
    async with opened_profile_store(request.param, tmp_path) as s:
        yield s


async def test_protocol_conformance(profiles: ProfileStore) -> None:
    assert isinstance(profiles, ProfileStore)


async def test_a_chosen_language_round_trips_and_can_be_cleared(profiles: ProfileStore) -> None:
    assert await profiles.profile("alice") is None
    assert await profiles.set_lang("alice", "es", at=10) == Profile("alice", "es", "", 10)
    assert await profiles.profile("alice") == Profile("alice", "es", "", 10)
    assert await profiles.set_lang("alice", "pt-BR", at=11) == Profile("alice", "pt-BR", "", 11)
    cleared = await profiles.set_lang("alice", "", at=12)
    assert cleared == Profile("alice", "", "", 12)
    assert cleared.preferred_lang == ""


async def test_the_chosen_language_wins_over_the_token_s_whatever_the_order(
    profiles: ProfileStore,
) -> None:
    assert await profiles.record_token_lang("bob", "de", at=1)
    bob = await profiles.profile("bob")
    assert bob == Profile("bob", "", "de", 1)
    assert bob.preferred_lang == "de"
    await profiles.set_lang("bob", "fr", at=2)
    assert await profiles.record_token_lang("bob", "it", at=3)  # a new token, a new claim
    bob = await profiles.profile("bob")
    assert bob == Profile("bob", "fr", "it", 3)
    assert bob.preferred_lang == "fr"
    await profiles.set_lang("bob", "", at=4)
    bob = await profiles.profile("bob")
    assert bob is not None
    assert bob.preferred_lang == "it"


async def test_recording_the_same_claim_again_changes_nothing(profiles: ProfileStore) -> None:
    assert await profiles.record_token_lang("carol", "en", at=5)
    assert not await profiles.record_token_lang("carol", "en", at=6)
    assert await profiles.profile("carol") == Profile("carol", "", "en", 5)
    assert await profiles.record_token_lang("carol", "", at=7)  # the token no longer says
    assert await profiles.profile("carol") == Profile("carol", "", "", 7)


async def test_profiles_of_many_users(profiles: ProfileStore) -> None:
    for i in range(1200):  # more than one SQL batch of parameters
        await profiles.set_lang(f"u{i}", "es" if i % 2 else "de", at=i)
    wanted = [f"u{i}" for i in range(0, 1200, 3)] + ["nobody", "u0"]
    found = {p.user: p.lang for p in await profiles.profiles(wanted)}
    assert found == {f"u{i}": "es" if i % 2 else "de" for i in range(0, 1200, 3)}
    assert await profiles.profiles([]) == []


async def test_concurrent_writes_of_both_languages_keep_both(profiles: ProfileStore) -> None:
    await asyncio.gather(
        *(profiles.set_lang(f"d{i}", "es", at=i) for i in range(20)),
        *(profiles.record_token_lang(f"d{i}", "en", at=i) for i in range(20)),
    )
    found = await profiles.profiles([f"d{i}" for i in range(20)])
    assert {(p.lang, p.token_lang) for p in found} == {("es", "en")}
    assert len(found) == 20


async def test_closed_store_refuses(profiles: ProfileStore) -> None:
    await profiles.close()
    with pytest.raises(StoreClosedError):
        await profiles.profile("alice")
    await profiles.open()  # the fixture closes it again


async def test_sqlite_profiles_share_the_file_with_rooms(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    rooms, profiles = SQLiteRoomStore(path), SQLiteProfileStore(path)
    await rooms.open()
    await profiles.open()
    try:
        await profiles.set_lang("alice", "es", at=1)
        assert await rooms.rooms_of("alice") == []
    finally:
        await profiles.close()
        await rooms.close()
    again = SQLiteProfileStore(path)
    await again.open()
    try:
        assert await again.profile("alice") == Profile("alice", "es", "", 1)
    finally:
        await again.close()
