"""The membership broadcast: every node hears when a user is removed from a room.

One Redis pub/sub channel (`ChatKeys.control_channel`) that every node subscribes to. The
node that removes a member publishes ``{"op": "removed", "room": ..., "user": ...}`` after
the store and the caches have the change; every node, itself included, then calls its
``on_removed(room, user)`` (a task of its own per message, so a slow one never holds up the
channel): the gateway forgets the ACL's cached answer for that pair, ends the user's sessions
subscribed to the room's topic with an ERROR that says why, and ends the typing the user
showed in the room. Pub/sub
delivers in well under a second; a node that is cut off from Redis at that moment misses
the message (pub/sub keeps nothing), and its cached ACL answer then expires by itself
(``STOMPGATE_MEMBERSHIP_CACHE_TTL``), but its sessions already subscribed stay until they
reconnect: the log says when the channel was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("stompgate.chat")

OnRemoved = Callable[[str, str], Awaitable[None]]
#: Seconds between attempts to subscribe again after the channel broke.
RETRY_SECONDS = 1.0


class MembershipControl:
    def __init__(self, redis: aioredis.Redis, channel: str, on_removed: OnRemoved) -> None:
        self._redis = redis
        self._channel = channel
        self._on_removed = on_removed
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()  # on_removed calls still running
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Listen, from the moment this returns."""
        self._task = asyncio.get_running_loop().create_task(
            self._listen_forever(), name="stompgate-membership-control"
        )
        waiter = asyncio.ensure_future(self._subscribed.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            self._task.result()  # raises what stopped it

    async def removed(self, room: str, user: str) -> None:
        """Tell every node (this one too) that ``user`` is no longer a member of ``room``."""
        message = orjson.dumps({"op": "removed", "room": room, "user": user})
        await self._redis.publish(self._channel, message)

    async def close(self) -> None:
        tasks = [*self._handlers, *([] if self._task is None else [self._task])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen_forever(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    self._handle(message)
            except (RedisError, OSError) as exc:
                log.warning("membership channel lost (%s); subscribing again", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_SECONDS)

    def _handle(self, message: dict[str, object]) -> None:
        try:
            data = message.get("data")
            event = orjson.loads(data if isinstance(data, bytes | str) else b"")
            if event.get("op") == "removed":
                room, user = str(event["room"]), str(event["user"])
            else:
                return
        except Exception:  # one bad message must not stop the channel
            log.exception("bad membership control message")
            return
        task = asyncio.get_running_loop().create_task(self._removed_here(room, user))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _removed_here(self, room: str, user: str) -> None:
        try:
            await self._on_removed(room, user)
        except Exception:
            log.exception("could not apply the removal of %s from room %s", user, room)
