"""The push-subscription contract: where a user's notifications go, and the rooms they muted.

The gateway's push API writes through `PushStore` (a user registers, lists and removes their
subscriptions, mutes and unmutes rooms) and the notify worker reads through it (and removes a
subscription the provider reports gone). Backends: `SQLitePushStore` (the same file as the
messages) and `MongoPushStore`; tests/store's shared suite holds every backend to this:

- `save_subscription` is an upsert on (user, kind, address): registering the same browser
  endpoint or device token again keeps its id and updates its keys; it returns True when the
  subscription is new.
- A subscription's `id` is derived from (user, kind, address), so it is the same on every
  backend and for every registration of the same target.
- `subscriptions(user)` lists a user's subscriptions, oldest first; `subscription(id)` finds
  one by id (None if removed); `delete_subscription(id, user=...)` removes it when it exists
  (and, with `user`, belongs to that user), and says whether it did.
- `set_muted(user, room, True/False)` is idempotent; `muted_rooms(user)` is sorted;
  `is_muted(user, room)` answers one pair.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal, Protocol, runtime_checkable

import msgspec

Kind = Literal["webpush", "fcm", "apns"]
KINDS: tuple[Kind, ...] = ("webpush", "fcm", "apns")


class PushSubscription(msgspec.Struct, frozen=True, kw_only=True):
    """One target of a user's notifications.

    `kind` is the provider: `webpush` (`address` is the push service endpoint URL, with the
    browser's `p256dh` and `auth` keys), `fcm` (an FCM registration token) or `apns` (an APNs
    device token, hex). `created_at` is epoch milliseconds of the first registration.
    """

    id: str
    user: str
    kind: Kind
    address: str
    p256dh: str = ""
    auth: str = ""
    created_at: int = 0


def subscription_id(user: str, kind: str, address: str) -> str:
    """A stable id for (user, kind, address): 22 URL-safe characters (128 bits)."""
    digest = hashlib.sha256("\x00".join((user, kind, address)).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_subscription(
    user: str, kind: Kind, address: str, *, p256dh: str = "", auth: str = "", created_at: int
) -> PushSubscription:
    return PushSubscription(
        id=subscription_id(user, kind, address),
        user=user,
        kind=kind,
        address=address,
        p256dh=p256dh,
        auth=auth,
        created_at=created_at,
    )


@runtime_checkable
class PushStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def save_subscription(self, subscription: PushSubscription) -> bool: ...

    async def subscriptions(self, user: str) -> list[PushSubscription]: ...

    async def subscription(self, subscription_id: str) -> PushSubscription | None: ...

    async def delete_subscription(
        self, subscription_id: str, *, user: str | None = None
    ) -> bool: ...

    async def set_muted(self, user: str, room: str, muted: bool) -> None: ...

    async def muted_rooms(self, user: str) -> list[str]: ...

    async def is_muted(self, user: str, room: str) -> bool: ...
