"""Users' profiles on the gateway: the language the translation worker translates into for a
user, chosen through the profile API or claimed by their token.

The worker never sees a token, so the gateway records a token's language claim (the
``--lang-claim`` claim, a dotted path; ``locale`` by default, OpenID Connect's) in the
user's profile (`store.ProfileStore`, ``token_lang``) when the token is used:

- at CONNECT: `ClaimRecorder` is a lifecycle listener of the node (its
  ``on_authenticated``); it never blocks the node: it remembers what it recorded for each
  user (the last `REMEMBERED` users) and queues only changes (at most `QUEUE` waiting; a
  change that finds the queue full is dropped, and recorded at the user's next CONNECT),
  which one task writes to the store one at a time;
- on every call of the profile API (`ProfileService.record_claim`, awaited there).

The language a user chooses (``PUT /api/me/profile``, ``lang``) wins over the claimed one,
whichever was written last (`store.Profile.preferred_lang`). A token without the claim, or
with a value that is not a language tag, leaves the recorded one as it is.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from gateway.auth.identity import Identity
from gateway.chat.store_api import Profile, ProfileStore
from schemas.models import LANG_PATTERN

__all__ = ["ClaimRecorder", "ProfileService", "token_lang"]

log = logging.getLogger("stompgate.chat.profiles")

#: Users whose recorded claim the recorder remembers (the oldest are forgotten first).
REMEMBERED = 10_000
#: Claims waiting to be written at most.
QUEUE = 1_000
_LANG = re.compile(LANG_PATTERN)
_MAX_LANG = 35


def token_lang(claims: Mapping[str, Any], claim: str) -> str | None:
    """The language tag the claim at the dotted path ``claim`` holds (``pt_BR`` is read as
    ``pt-BR``), or None: no claim configured, absent, or not a language tag."""
    if not claim:
        return None
    value: Any = claims
    for part in claim.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if not isinstance(value, str):
        return None
    tag = value.strip().replace("_", "-")
    return tag if len(tag) <= _MAX_LANG and _LANG.match(tag) else None


class ProfileService:
    """Reading and writing profiles for the profile API."""

    def __init__(self, store: ProfileStore, *, claim: str, clock: Callable[[], int]) -> None:
        self.store = store
        self.claim = claim
        self._clock = clock

    def claimed(self, identity: Identity) -> str | None:
        return token_lang(identity.claims, self.claim)

    async def record_claim(self, identity: Identity) -> None:
        """Record the language ``identity``'s token claims, if it claims one."""
        lang = self.claimed(identity)
        if lang is not None:
            await self.store.record_token_lang(identity.user, lang, at=self._clock())

    async def profile(self, user: str) -> Profile:
        found = await self.store.profile(user)
        return found if found is not None else Profile(user, "", "", 0)

    async def set_lang(self, user: str, lang: str) -> Profile:
        """Set (or, with "", clear) the language ``user`` chose."""
        return await self.store.set_lang(user, lang, at=self._clock())


def profile_body(profile: Profile) -> dict[str, Any]:
    """users.profile.v1."""
    body: dict[str, Any] = {"v": 1, "user": profile.user}
    for name, value in (
        ("lang", profile.lang),
        ("token_lang", profile.token_lang),
        ("preferred_lang", profile.preferred_lang),
    ):
        if value:
            body[name] = value
    return body


class Authenticated(Protocol):
    """What the recorder reads of a connection the node announces as authenticated."""

    @property
    def identity(self) -> Identity | None: ...


class ClaimRecorder:
    """A node lifecycle listener that records tokens' language claims at CONNECT (see the
    module docstring). Never raises, never blocks."""

    def __init__(
        self,
        store: ProfileStore,
        *,
        claim: str,
        clock: Callable[[], int],
        remembered: int = REMEMBERED,
        queue: int = QUEUE,
    ) -> None:
        self._store = store
        self._claim = claim
        self._clock = clock
        self._remembered = remembered
        self._recorded: OrderedDict[str, str] = OrderedDict()  # user -> claim written
        self._waiting: asyncio.Queue[tuple[str, str]] = asyncio.Queue(queue)
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0

    def on_opened(self, conn: object) -> None:
        pass

    def on_authenticated(self, conn: Authenticated) -> None:
        identity = conn.identity
        if identity is not None:
            self.note(identity.user, token_lang(identity.claims, self._claim))

    def on_closed(self, conn: object, reason: str) -> None:
        pass

    def on_activity(self, conns: Sequence[object]) -> None:
        pass

    def note(self, user: str, lang: str | None) -> None:
        """Queue ``lang`` for ``user``'s profile unless it is what was recorded last."""
        if lang is None or self._recorded.get(user) == lang:
            return
        try:
            self._waiting.put_nowait((user, lang))
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while not self._waiting.empty():
            user, lang = self._waiting.get_nowait()
            if self._recorded.get(user) == lang:
                continue
            try:
                await self._store.record_token_lang(user, lang, at=self._clock())
            except Exception:
                log.warning("could not record the language claim of %s", user, exc_info=True)
                continue
            self._recorded[user] = lang
            self._recorded.move_to_end(user)
            while len(self._recorded) > self._remembered:
                self._recorded.popitem(last=False)

    async def flush(self) -> None:
        """Until every claim queued so far is written (tests; before closing the store)."""
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
