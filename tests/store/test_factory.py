from __future__ import annotations

import pytest

from store import MongoStore, SQLiteStore, open_store


@pytest.mark.parametrize(
    ("url", "path", "sync"),
    [
        ("sqlite:///var/stompgate.db", "var/stompgate.db", "FULL"),
        ("sqlite:////tmp/x/stompgate.db", "/tmp/x/stompgate.db", "FULL"),
        ("sqlite://:memory:", ":memory:", "FULL"),
        ("sqlite:///:memory:", ":memory:", "FULL"),
        ("sqlite:///a.db?synchronous=normal", "a.db", "NORMAL"),
    ],
)
def test_sqlite_urls(url: str, path: str, sync: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == path
    assert store.synchronous == sync


@pytest.mark.parametrize("url", ["mongodb://localhost/chat", "mongodb+srv://cluster.example/db"])
def test_mongodb_urls(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, MongoStore)
    assert store.url == url


@pytest.mark.parametrize(
    "url", ["postgres://x/y", "sqlite://", "sqlite:///", "sqlite:///a.db?journal=off", "nonsense"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages vary by case
        open_store(url)
