"""`make up`'s demo room: ``lobby``, whose language is Spanish, with every development login as
a member, made in the store of ``STOMPGATE_STORE`` if it is not there yet.

The translation worker translates a room's messages into the room's language and its
members' languages (workers/README.md), so on the demo page an English post in ``lobby``
gets a Spanish translation (Apertium's English-Spanish pair), and after a member sets their
own language to English (the page's "my language", ``PUT /api/me/profile``) a Spanish post
gets an English one. A room that already exists is left as it is.

    python -m scripts.demo_room        # reads STOMPGATE_STORE and STOMPGATE_DEV_USERS
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from store import Member, Room, open_room_store

ROOM = "lobby"
LANG = "es"


async def seed(store_url: str, users: list[str]) -> bool:
    """Whether the room was made (False: it was there already)."""
    store = open_room_store(store_url)
    await store.open()
    try:
        now = time.time_ns() // 1_000_000
        room = Room(ROOM, "group", "Lobby", LANG, "", now)
        return await store.create_room(room, [Member(ROOM, u, "member", now) for u in users])
    finally:
        await store.close()


def main() -> int:
    store_url = os.environ.get("STOMPGATE_STORE", "")
    if not store_url:
        print("demo room: no STOMPGATE_STORE, nothing to do", file=sys.stderr)
        return 0
    pairs = os.environ.get("STOMPGATE_DEV_USERS") or "guest:guest"
    users = [p.strip().partition(":")[0] for p in pairs.split(",") if p.strip()]
    made = asyncio.run(seed(store_url, users))
    what = "made" if made else "already there"
    print(f"demo room: {ROOM} ({LANG}, members {', '.join(users)}) {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
