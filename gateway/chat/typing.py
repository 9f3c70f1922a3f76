"""Typing indicators: transient, rate-limited per user and room, stopped when the user posts
or leaves.

`TypingGate` decides, per node and in memory (typing is never cached nor stored), which
``/app/rooms/{room}/typing`` SENDs become a chat.typing.v1 event on the room topic:

* at most one ``typing: true`` per user and room per ``interval`` (default 2 s); the extra ones
  are dropped silently (the SEND still succeeds): a client repeats ``true`` while the user types,
  so the next one after the interval goes out and keeps the room's indicator alive;
* a ``typing: false`` goes out only to end a ``true`` the room was told, and only while that
  ``true`` is live (younger than ``timeout``, default 10 s: receivers hide an indicator that was
  not renewed within it, so after that nothing needs ending);
* the room gets a ``typing: false`` when the user posts a message in it or is removed from it
  (:meth:`end`), when the session that typed unsubscribes from the room's topic (:meth:`left`)
  and when it is gone (:meth:`gone`: disconnected, closed, dropped).

So a room sees at most one ``true`` and one ``false`` per user per interval. The gate is per
node: a user typing from devices on two nodes at once may reach the room once per node.
It has no clock and no I/O: callers pass the time and publish what it returns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TypingGate", "TypingSettings"]

Key = tuple[str, str]
"""(user, room)"""


@dataclass(frozen=True, slots=True)
class TypingSettings:
    """Typing indicators (``gateway/chat/typing.py``).

    Environment variables:

    ======================  =======  ==============================================================
    variable                default  meaning
    ======================  =======  ==============================================================
    ``TYPING_INTERVAL``     ``2``    seconds: at most one ``typing: true`` per user and room in it
    ``TYPING_TIMEOUT``      ``10``   seconds after which a ``typing: true`` not renewed has lapsed
    ======================  =======  ==============================================================
    """

    interval: float = 2.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"STOMPGATE_TYPING_INTERVAL must not be negative, got {self.interval}")
        if self.timeout <= 0:
            raise ValueError(f"STOMPGATE_TYPING_TIMEOUT must be positive, got {self.timeout}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TypingSettings:
        """From ``STOMPGATE_TYPING_*``; `ValueError` naming the variable for a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for name in ("interval", "timeout"):
            variable = f"STOMPGATE_TYPING_{name.upper()}"
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ValueError(f"{variable}: expected seconds, got {raw!r}") from None
        return cls(**values)


class _Typing:
    """One user typing in one room, as this node told the room."""

    __slots__ = ("live", "renewed", "sent", "session")

    def __init__(self, session: str, now: float) -> None:
        self.session = session  # the session that said true last
        self.sent = now  # when the room was last told true
        self.renewed = now  # when a true last came in
        self.live = True  # told true, not yet ended


class TypingGate:
    def __init__(self, settings: TypingSettings | None = None) -> None:
        settings = settings or TypingSettings()
        self._interval = settings.interval
        self._timeout = settings.timeout
        self._entries: dict[Key, _Typing] = {}
        self._by_session: dict[str, set[Key]] = {}
        self._pruned = 0.0

    def __len__(self) -> int:
        """Entries held (live indicators and recent ones still counted by the rate limit)."""
        return len(self._entries)

    def typing(self, session: str, user: str, room: str, typing: bool, now: float) -> bool:
        """A SEND of ``typing`` (seconds ``now``): whether the room is to be told."""
        self._prune(now)
        key = (user, room)
        entry = self._entries.get(key)
        if not typing:
            return self._end(key, entry, now)
        if entry is None:
            entry = self._entries[key] = _Typing(session, now)
            self._index(session, key)
            return True
        if entry.session != session:
            self._unindex(entry.session, key)
            entry.session = session
            self._index(session, key)
        if entry.live and now - entry.renewed >= self._timeout:
            entry.live = False  # lapsed: receivers hid it already
        entry.renewed = now
        if now - entry.sent < self._interval:
            return False  # rate limited: dropped (a live indicator stays live)
        entry.sent = now
        entry.live = True
        return True

    def end(self, user: str, room: str, now: float) -> bool:
        """``user`` posted a message in ``room`` or was removed from it: whether the room is
        to be told false."""
        key = (user, room)
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        # A post is a boundary of its own (posts have their own limits): the next
        # ``typing: true`` starts a new indicator at once, not after the rate limit's interval.
        self._unindex(entry.session, key)
        return self._end(key, entry, now)

    def left(self, session: str, room: str, now: float) -> list[str]:
        """``session`` unsubscribed from ``room``: the users it was typing for (their false
        goes to the room)."""
        keys = [key for key in self._by_session.get(session, ()) if key[1] == room]
        return [key[0] for key in keys if self._end(key, self._entries.get(key), now)]

    def gone(self, session: str, now: float) -> list[Key]:
        """``session`` is gone: every (user, room) whose typing it leaves to end."""
        keys = list(self._by_session.pop(session, ()))
        ended = [key for key in keys if self._end(key, self._entries.get(key), now)]
        for key in keys:  # forget the session's entries (the rate limit's record too)
            entry = self._entries.get(key)
            if entry is not None and entry.session == session:
                del self._entries[key]
        return ended

    def _end(self, key: Key, entry: _Typing | None, now: float) -> bool:
        if entry is None or not entry.live:
            return False
        entry.live = False
        return now - entry.renewed < self._timeout

    def _index(self, session: str, key: Key) -> None:
        keys = self._by_session.get(session)
        if keys is None:
            self._by_session[session] = {key}
        else:
            keys.add(key)

    def _unindex(self, session: str, key: Key) -> None:
        keys = self._by_session.get(session)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_session[session]

    def _prune(self, now: float) -> None:
        """Drop entries that neither hold a live indicator nor count for the rate limit (at
        most once a second, so the memory follows the users typing now)."""
        if now - self._pruned < 1.0:
            return
        self._pruned = now
        horizon = max(self._interval, self._timeout)
        stale = [
            key
            for key, entry in self._entries.items()
            if now - entry.renewed >= horizon and now - entry.sent >= self._interval
        ]
        for key in stale:
            entry = self._entries.pop(key)
            self._unindex(entry.session, key)
