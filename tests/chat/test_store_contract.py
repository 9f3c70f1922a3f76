"""The workers' message store satisfies the chat layer's `MessageReader` (checked by mypy)."""

from __future__ import annotations

from gateway.chat.store_api import MessageReader
from store import MessageStore
from tests.chat.fakes import InMemoryReader


def as_reader(store: MessageStore) -> MessageReader:
    return store  # a type error here means the two contracts drifted apart


def test_fake_is_a_reader() -> None:
    reader: MessageReader = InMemoryReader()
    assert callable(reader.history)
    assert callable(as_reader)
