"""Users' profiles: what the translation worker needs to know about a person (their preferred
language), and the contract every backend meets (`ProfileStore`; SQLite in
`profiles_sqlite.py`, MongoDB in `profiles_mongo.py`).

A profile holds two languages, so that the one a user chose always wins over the one their
token claims, whichever was written last:

- ``lang``: set by the user (``PUT /api/me/profile``); "" when they set none;
- ``token_lang``: the language claim of their token (``--lang-claim``), recorded by the
  gateway when they connect or call the HTTP API; "" when no token said one.

`Profile.preferred_lang` is ``lang``, else ``token_lang``. Semantics every backend honours
(tests/store/test_profiles_contract.py checks them):

- `set_lang` creates the profile if there is none and sets ``lang`` only ("" clears it);
- `record_token_lang` creates it if there is none and sets ``token_lang`` only, and says
  whether anything changed (so the gateway writes nothing when a user reconnects with the
  same token);
- `profiles` returns the profiles of the users that have one, in no particular order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec


class Profile(msgspec.Struct, frozen=True):
    user: str
    lang: str
    """The language the user chose, "" for none."""
    token_lang: str
    """The language their token claims, "" for none."""
    updated_at: int
    """Epoch milliseconds of the last change."""

    @property
    def preferred_lang(self) -> str:
        """The language to show this user: theirs, else their token's ("" for none)."""
        return self.lang or self.token_lang


@runtime_checkable
class ProfileStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def profile(self, user: str) -> Profile | None: ...

    async def profiles(self, users: Sequence[str]) -> list[Profile]: ...

    async def set_lang(self, user: str, lang: str, *, at: int) -> Profile:
        """Set (or, with "", clear) the language ``user`` chose; the profile as it is now."""
        ...

    async def record_token_lang(self, user: str, lang: str, *, at: int) -> bool:
        """Record the language ``user``'s token claims; whether it was not the recorded one."""
        ...
