"""Fixtures for the chatstate readers: the real Redis (keys under the per-test prefix: the
chat tests' fixture)."""

from __future__ import annotations

from tests.chat.conftest import chat, clock, publisher, redis, store

__all__ = ["chat", "clock", "publisher", "redis", "store"]
