"""Test doubles for the chat layer's own interfaces (not third-party mocks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from gateway.chat.store_api import StoredMessage


class InMemoryReader:
    """A `HistoryStore` over a list, with the store contract's keyset semantics."""

    def __init__(self, messages: Sequence[StoredMessage] = ()) -> None:
        self.messages: dict[int, StoredMessage] = {m.id: m for m in messages}
        self.calls: list[tuple[str, int | None, int | None, int]] = []

    def add_event(self, event: bytes) -> None:
        doc = orjson.loads(event)
        message = StoredMessage(
            id=int(doc["id"]),
            room=doc["room"],
            sender=doc["sender"],
            client_id=doc["client_id"],
            sent_at=doc["sent_at"],
            event=event,
        )
        self.messages[message.id] = message

    async def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        self.calls.append((room, before, after, limit))
        assert before is None or after is None
        rows = sorted((m for m in self.messages.values() if m.room == room), key=lambda m: m.id)
        if after is not None:
            return [m for m in rows if m.id > after][:limit]
        below = [m for m in rows if before is None or m.id < before]
        return below[::-1][:limit]

    async def count(self, room: str | None = None, *, upto: int | None = None) -> int:
        return sum(
            1
            for m in self.messages.values()
            if (room is None or m.room == room) and (upto is None or m.id <= upto)
        )

    async def newest_id(self, room: str, *, sender: str) -> int | None:
        own = [m.id for m in self.messages.values() if m.room == room and m.sender == sender]
        return max(own, default=None)


class InMemoryPointers:
    """A `ReadPointerStore` in a dict: pointers only move forward."""

    def __init__(self) -> None:
        self.pointers: dict[tuple[str, str], int] = {}

    async def set_read_pointer(self, room: str, user: str, message_id: int) -> int:
        stored = max(self.pointers.get((room, user), 0), message_id)
        self.pointers[room, user] = stored
        return stored

    async def read_pointers(self, room: str) -> dict[str, int]:
        return {user: p for (r, user), p in self.pointers.items() if r == room}

    async def pointers_of(self, user: str, rooms: Sequence[str]) -> dict[str, int]:
        return {r: p for (r, u), p in self.pointers.items() if u == user and r in rooms}


@dataclass
class Published:
    destination: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class RecordingPublisher:
    """A `PublishFn` that records every publish; ``fail_next`` makes publishes raise."""

    published: list[Published] = field(default_factory=list)
    fail_next: int = 0

    async def __call__(
        self, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("broker did not confirm")
        self.published.append(Published(destination, tuple(headers), body))


class ManualClock:
    def __init__(self, now_ms: int = 1_767_225_600_000 + 86_400_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int = 1) -> None:
        self.now_ms += ms
