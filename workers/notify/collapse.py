"""Collapse: at most one notification per user per room per window, with the latest preview.

Theory of operation. Per (user, room), two Redis keys under `{prefix}notify:`:

- `latest:{room}:{user}`, a hash: the newest message the user has not been notified of (`id`
  as 19 zero-padded digits, so ids compare as strings; `sender`, `text`, `sent_at`);
- `due:{room}:{user}`: the token of the one notification job waiting for this pair.

`note(users, message)` (one Lua step per user, pipelined) records the message as the latest
when it is newer, and opens a window when none is open: it sets `due` to a token (the
message's padded id) and answers the users whose window it opened; the worker schedules one
job for each, due `window` seconds later (a RabbitMQ queue whose messages expire after the
window). A redelivered message that opened the window answers its token again (the job may
not have been scheduled); the second job is then stale. A message that finds a window open
only updates `latest`: it rides along with the notification already scheduled.

When the job is due, `peek(user, room, token)` answers the latest message if the job still
owns the window (else None: stale), the worker decides and sends, and `commit(...)` closes
the window: it deletes both keys if nothing newer arrived since the peek, or, when a newer
message did, hands the window to it (a new token) so that it gets a notification of its own
one window later. Every path leaves at least a window between two notifications to a pair,
and no message is left behind without a job. Both keys expire after `stale_after` seconds,
so a lost job cannot hold a window open for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

NOTE = """
local cur = redis.call('HGET', KEYS[1], 'id')
if (not cur) or cur < ARGV[1] then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'sender', ARGV[2], 'text', ARGV[3],
             'sent_at', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
local due = redis.call('GET', KEYS[2])
if not due then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])
  return ARGV[1]
end
if due == ARGV[1] then
  return due
end
return false
"""

PEEK = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return false
end
return redis.call('HMGET', KEYS[1], 'id', 'sender', 'text', 'sent_at')
"""

COMMIT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return false
end
local cur = redis.call('HGET', KEYS[1], 'id')
if (not cur) or cur <= ARGV[2] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return false
end
redis.call('SET', KEYS[2], cur, 'EX', ARGV[3])
return cur
"""


def padded(message_id: int) -> str:
    return f"{message_id:019d}"


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest message a user has not been notified of in a room."""

    message_id: int
    sender: str
    text: str
    sent_at: int


class Collapser:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, stale_after: float = 86_400) -> None:
        self._redis = redis
        self._prefix = f"{prefix}notify:"
        self._ttl = max(1, int(stale_after))
        self._note = redis.register_script(NOTE)
        self._peek = redis.register_script(PEEK)
        self._commit = redis.register_script(COMMIT)

    def _keys(self, user: str, room: str) -> list[str]:
        return [f"{self._prefix}latest:{room}:{user}", f"{self._prefix}due:{room}:{user}"]

    async def note(self, users: Sequence[str], room: str, latest: Latest) -> list[tuple[str, str]]:
        """Record `latest` for each user; (user, token) for each window it opened."""
        if not users:
            return []
        args: list[str | int] = [
            padded(latest.message_id),
            latest.sender,
            latest.text,
            latest.sent_at,
            self._ttl,
        ]
        try:
            tokens = await self._note_all(users, room, args)
        except NoScriptError:
            # A Redis Cluster's pipeline, unlike a lone server's, does not load the script
            # first: load it (on every primary) and send the batch again (none of it ran).
            await self._redis.script_load(NOTE)
            tokens = await self._note_all(users, room, args)
        return [(user, _text(t)) for user, t in zip(users, tokens, strict=True) if t]

    async def _note_all(
        self, users: Sequence[str], room: str, args: list[str | int]
    ) -> list[bytes | str | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for user in users:
                await self._note(keys=self._keys(user, room), args=args, client=pipe)
            return list(await pipe.execute())

    async def peek(self, user: str, room: str, token: str) -> Latest | None:
        """The latest message, if the job with `token` still owns the window."""
        found = await self._peek(keys=self._keys(user, room), args=[token])
        if not found or found[0] is None:
            return None
        message_id, sender, text, sent_at = (_text(v) for v in found)
        return Latest(int(message_id), sender, text, int(sent_at))

    async def commit(self, user: str, room: str, token: str, peeked: Latest) -> str | None:
        """Close the window; the token of a new one when a newer message arrived meanwhile."""
        args: list[str | int] = [token, padded(peeked.message_id), self._ttl]
        again = await self._commit(keys=self._keys(user, room), args=args)
        return _text(again) if again else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
