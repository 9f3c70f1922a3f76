"""`ChatLayer`: the gateway's handler for SENDs to ``/app/...`` destinations.

- ``/app/rooms/{room}/messages`` (chat.post.v1): validate, stamp the sender from the session
  (never from the client), take a Snowflake id above every id the room has (picked in the
  reserve step itself, so concurrent posts never race for it; a node whose clock is behind
  then follows the room's newest id), build chat.message.v1, put it in the room's
  recent cache *before* publishing (a subscriber that binds and then reads the cache cannot
  miss a message published just before its binding existed), publish once to
  ``/topic/room.{room}`` with its room ordinal in ``stompgate-room-seq`` (the gateways
  deliver a room's messages in that order: `gateway.relay.ordering`). A failed publish takes
  the message back out of the cache. Retries
  with the same ``client_id`` get the original id and publish nothing; a retry of a post
  still pending (its first attempt's node died before the confirm) publishes the same
  message again, same id, and confirms it (`post_ledger`).
- ``/app/rooms/{room}/read`` (chat.read.v1): move the read pointer forward (`read_state`) and,
  if it moved, publish chat.receipt.v1 to the room and the room's new unread count
  (chat.unread.v1) to every live session of the reader (``notify_user``: the gateway sends it
  to ``/user/<reader>/queue/unread``). Posting moves the poster's pointer too (their own
  messages are never unread); counts are exact (`read_state`, `unread`).
- ``/app/rooms/{room}/typing`` (chat.typing_state.v1): publish chat.typing.v1, not persistent,
  never cached, rate-limited per user and room (`gateway.chat.typing`); the room gets a
  ``typing: false`` when the user posts there or is removed from it
  (:meth:`ChatLayer.member_removed`), and when the session that typed unsubscribes from the
  room (:meth:`ChatLayer.left_room`) or is gone (:meth:`ChatLayer.session_gone`).

Reads of history below the recent cache are refused (`StoreBehindError`) rather than served
with a gap while the store lags (`gateway.chat.unstored`); the layer prunes the room's
unstored set in the background as it grows.

Client headers are never forwarded: the published headers are built here, so a client cannot
set ``sender`` (in the body it is an unknown field and rejected).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis.asyncio as aioredis

from chatstate.keys import ChatKeys
from gateway.chat import events
from gateway.chat.destinations import (
    APP_PREFIX,
    Action,
    is_valid_room,
    parse_app_destination,
    room_topic,
)
from gateway.chat.errors import ChatError
from gateway.chat.history import HistoryReader
from gateway.chat.post_ledger import Existing, PostLedger, Reserved
from gateway.chat.read_state import ReadState
from gateway.chat.recent import RecentCache, decode_member
from gateway.chat.snowflake import MAX_ID, parse
from gateway.chat.store_api import HistoryStore, ReadPointerStore
from gateway.chat.typing import TypingGate, TypingSettings
from gateway.chat.unread import RoomsOf, UnreadCounts
from gateway.chat.unstored import UnstoredSet
from gateway.errors import ClientError, ErrorMessage
from schemas import SchemaError, decode
from schemas.models import ChatPost, ChatRead, TypingState

log = logging.getLogger("stompgate.chat")

_T = TypeVar("_T", ChatPost, ChatRead, TypingState)

PublishFn = Callable[[str, Sequence[tuple[str, str]], bytes], Awaitable[None]]
"""(destination, headers, body) -> returns once the broker confirmed; raises on failure."""

NotifyFn = Callable[[str, Sequence[tuple[str, str]], bytes], Awaitable[None]]
"""(user, headers, body) -> sent to every live session of ``user`` (``/user/queue/unread``)."""

UNREAD_QUEUE = "unread"
"""The user queue unread counts go to: ``/user/queue/unread``."""


class IdSource(Protocol):
    """Issues Snowflake ids: `SnowflakeGenerator` or `NodeLease`."""

    def next_id(self, now_ms: int) -> int:
        """A new id at Unix ms ``now_ms``."""
        ...

    def follow(self, snowflake: int) -> object:
        """Make later ids greater than ``snowflake``; may return an awaitable to await."""
        ...


PRUNE_BATCH = 1000
"""Unstored ids a background prune checks against the store at once."""


@dataclass(frozen=True, slots=True)
class ChatResult:
    action: Action
    room: str
    message_id: int | None = None
    """messages: the message's id (the original one for a duplicate); read: the pointer."""
    duplicate: bool = False
    """messages: the client id was seen before; nothing was published."""
    unread: int | None = None
    """read: messages in the room after the pointer."""


@dataclass(frozen=True, slots=True)
class ReplayItem:
    message_id: int
    destination: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class ChatLayer:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        key_prefix: str,
        ids: IdSource,
        clock: Callable[[], int],
        publish: PublishFn,
        store: HistoryStore | None,
        pointers: ReadPointerStore | None = None,
        notify_user: NotifyFn | None = None,
        rooms_of: RoomsOf | None = None,
        recent_limit: int = 200,
        max_body: int = 16384,
        recent_ttl_s: int = 7 * 24 * 3600,
        pending_ttl_ms: int = 60_000,
        idempotency_ttl_s: int = 24 * 3600,
        max_future_ms: int = 5_000,
        prune_every: int = 256,
        typing: TypingSettings | None = None,
        on_post_confirmed: Callable[[float], None] | None = None,
    ) -> None:
        """``on_post_confirmed`` hears the seconds each post's publish took to be confirmed
        by the broker (the node's publish-confirm histogram, as for any other SEND).
        ``idempotency_ttl_s``: how long a confirmed post's client id is remembered (the
        gateway passes its ``--post-idempotency-ttl``)."""
        if recent_limit < 1:
            raise ValueError("recent_limit must be at least 1")
        if prune_every < 1:
            raise ValueError("prune_every must be at least 1")
        keys = ChatKeys(key_prefix)
        self._ids = ids
        self._clock = clock
        self._publish = publish
        self._on_post_confirmed = on_post_confirmed
        self._max_body = max_body
        self._max_future_ms = max_future_ms
        self._store = store
        self._prune_every = prune_every
        self._prunes: dict[str, asyncio.Task[None]] = {}
        self.typing = TypingGate(typing)
        self.recent = RecentCache(redis, keys)
        self.unstored = UnstoredSet(redis, keys)
        self.history = HistoryReader(self.recent, store, self.unstored)
        self._notify_user = notify_user
        self.read_state = ReadState(
            redis,
            keys,
            store=store,
            pointers=pointers,
            unstored=self.unstored,
            prune=self.prune_unstored,
        )
        self.unread_counts = UnreadCounts(redis, keys, self.read_state, rooms_of=rooms_of)
        self._ledger = PostLedger(
            redis,
            keys,
            recent_limit=recent_limit,
            recent_ttl_s=recent_ttl_s,
            pending_ttl_ms=pending_ttl_ms,
            idempotency_ttl_s=idempotency_ttl_s,
            # Without a store nothing reads below the cache: nothing to track.
            track_unstored=store is not None,
            count_room=self.read_state.ensure_counter,
        )

    def handles(self, destination: str) -> bool:
        return destination.startswith(APP_PREFIX)

    async def handle_send(
        self,
        user: str,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        session: str = "",
    ) -> ChatResult:
        """Handle one SEND of ``session`` to an /app destination; `ChatError` for a client
        mistake.

        Any other exception (Redis, the publish, a lost node lease) is the server's failure.
        """
        target = parse_app_destination(destination)
        if len(body) > self._max_body:
            raise ChatError(
                f"body too large: {len(body)} bytes, at most {self._max_body}",
                message=ErrorMessage.MESSAGE_TOO_LARGE,
            )
        if target.action == "messages":
            return await self._post(user, target.room, body)
        if target.action == "read":
            return await self._read(user, target.room, body)
        return await self._typing(session, user, target.room, body)

    async def _post(self, user: str, room: str, body: bytes) -> ChatResult:
        post = _decode(ChatPost, body)
        candidate = self._ids.next_id(self._clock())
        template = events.message_template(room=room, sender=user, post=post)
        reservation = await self._ledger.reserve(
            user=user, client_id=post.client_id, room=room, candidate=candidate, event=template
        )
        if isinstance(reservation, Existing):
            if reservation.pending:
                await self._take_over(user, room, post, reservation.message_id)
            return ChatResult("messages", room, reservation.message_id, duplicate=True)
        message_id = reservation.message_id
        if reservation.unstored and reservation.unstored % self._prune_every == 0:
            self._start_prune(room)
        headers = events.message_headers(
            message_id, user, post.client_id, room_seq=reservation.ordinal
        )
        started = time.perf_counter()
        try:
            if message_id != candidate:
                await self._follow(room, candidate, message_id)
            await self._publish(room_topic(room), headers, reservation.event)
        except ClientError as exc:
            if not exc.maybe_done:
                await self._abort(user, room, post, reservation)
            # Else the broker may hold the message (its confirm was lost with the connection):
            # the reservation stays pending, so the client's retry with the same client id
            # takes the post over (same id, same bytes) instead of posting it again under a
            # second id that the store, idempotent on the client id, would never keep.
            raise
        except BaseException:
            await self._abort(user, room, post, reservation)
            raise
        if self._on_post_confirmed is not None:
            self._on_post_confirmed(time.perf_counter() - started)
        try:
            await self._ledger.confirm(
                user=user, client_id=post.client_id, room=room, message_id=message_id
            )
        except Exception:
            # The broker has the post: it is delivered and stored under this id, so the
            # client gets its RECEIPT. Its client id stays pending in Redis (a retry takes
            # it over under the same id) unless Redis lost it (then see docs/reliability).
            log.warning(
                "message %d published; Redis did not mark client id %s done",
                message_id,
                post.client_id,
                exc_info=True,
            )
        now = self._clock()
        if self.typing.end(user, room, now / 1000):
            await self._typing_stopped(user, room, now)
        return ChatResult("messages", room, message_id)

    async def _abort(self, user: str, room: str, post: ChatPost, reservation: Reserved) -> None:
        """The publish failed and the broker does not hold the message: undo the reserve."""
        try:
            await self._ledger.abort(
                user=user, client_id=post.client_id, room=room, reserved=reservation
            )
        except Exception:
            log.exception("could not uncache unpublished message %d", reservation.message_id)

    async def _follow(self, room: str, candidate: int, message_id: int) -> None:
        """The reserve step gave the post an id above ``candidate`` (the room, or this node
        in another room, was ahead): later ids of this node start above it (`NodeLease`
        raises its floor first when that takes it past the floor)."""
        ahead_ms = parse(message_id).ts_ms - parse(candidate).ts_ms
        if ahead_ms > self._max_future_ms:
            log.warning(
                "room %s holds ids %d ms ahead of this node's clock: clocks disagree",
                room,
                ahead_ms,
            )
        following = self._ids.follow(message_id)
        if inspect.isawaitable(following):
            await following

    @staticmethod
    def _message_event(message_id: int, room: str, user: str, post: ChatPost) -> bytes:
        # sent_at is the id's own timestamp, so the event is a function of (id, room, sender,
        # post): a retry that takes a post over rebuilds the very same bytes.
        return events.message_template(room=room, sender=user, post=post).fill(message_id)

    async def _take_over(self, user: str, room: str, post: ChatPost, message_id: int) -> None:
        """Publish again a post whose first attempt never confirmed (see `post_ledger`)."""
        member = await self._ledger.cached_member(room, message_id)
        room_seq: int | None = None
        if member is not None:
            cached = decode_member(member)
            event, room_seq = cached.event, cached.ordinal
        else:  # trimmed out of the cache already: the same bytes, rebuilt
            event = self._message_event(message_id, room, user, post)
        headers = events.message_headers(message_id, user, post.client_id, room_seq=room_seq)
        await self._publish(room_topic(room), headers, event)
        await self._ledger.confirm_takeover(
            user=user, client_id=post.client_id, room=room, message_id=message_id, member=member
        )
        log.info("republished pending message %d (client_id %s)", message_id, post.client_id)

    async def _read(self, user: str, room: str, body: bytes) -> ChatResult:
        read = _decode(ChatRead, body)
        message_id = int(read.message_id)
        now = self._clock()
        if message_id > MAX_ID or parse(message_id).ts_ms > now + self._max_future_ms:
            raise ChatError(
                "invalid chat.read: `message_id` is not a message id issued so far",
                f"message id {message_id} lies in the future",
            )
        pointer = await self.read_state.mark_read(user, room, message_id)
        if pointer.moved:
            receipt = events.receipt_event(
                room=room, user=user, message_id=pointer.message_id, read_at=now
            )
            sends = [self._publish(room_topic(room), events.receipt_headers(user), receipt)]
            if self._notify_user is not None:
                unread = events.unread_event(
                    room=room,
                    unread=pointer.unread,
                    read_id=pointer.message_id,
                    last_id=pointer.last_id,
                    at=now,
                )
                sends.append(self._notify_user(user, events.event_headers("unread", user), unread))
            await asyncio.gather(*sends)
        return ChatResult("read", room, pointer.message_id, unread=pointer.unread)

    async def _typing(self, session: str, user: str, room: str, body: bytes) -> ChatResult:
        state = _decode(TypingState, body)
        now = self._clock()
        if self.typing.typing(session, user, room, state.typing, now / 1000):
            event = events.typing_event(room=room, user=user, typing=state.typing, at=now)
            await self._publish(room_topic(room), events.typing_headers(user), event)
        return ChatResult("typing", room)

    async def _typing_stopped(self, user: str, room: str, now: int) -> None:
        event = events.typing_event(room=room, user=user, typing=False, at=now)
        await self._publish(room_topic(room), events.typing_headers(user), event)

    async def left_room(self, session: str, room: str) -> None:
        """``session`` unsubscribed from ``room``'s topic: end the typing it showed there."""
        now = self._clock()
        for user in self.typing.left(session, room, now / 1000):
            await self._typing_stopped(user, room, now)

    async def member_removed(self, room: str, user: str) -> None:
        """``user`` was removed from ``room``: end the typing they showed there (on this
        node; the membership broadcast calls it on every node)."""
        now = self._clock()
        if self.typing.end(user, room, now / 1000):
            await self._typing_stopped(user, room, now)

    async def session_gone(self, session: str) -> None:
        """``session`` is gone: end the typing it showed in any room."""
        now = self._clock()
        for user, room in self.typing.gone(session, now / 1000):
            await self._typing_stopped(user, room, now)

    async def position(self, room: str) -> tuple[int, int]:
        """(room ordinal counter, newest id) now: what a catch-up seeds the room order with."""
        if not is_valid_room(room):
            raise ChatError(f"invalid room id '{room}'", message=ErrorMessage.INVALID_DESTINATION)
        await self.read_state.ensure_counter(room)  # Redis may have lost it: from the store
        return await self.recent.position(room)

    async def replay(self, room: str, after_id: int, limit: int = 1000) -> list[ReplayItem]:
        """Messages of ``room`` with id > after_id, ascending, as the live publish sent them.

        Reads the recent cache and, when the cache does not reach back to ``after_id``, the
        store. Each item carries the live headers plus ``stompgate-replay: true``.
        """
        if not is_valid_room(room):
            raise ChatError(f"invalid room id '{room}'", message=ErrorMessage.INVALID_DESTINATION)
        topic = room_topic(room)
        return [
            ReplayItem(
                entry.id,
                topic,
                (*events.message_headers_from_event(entry.event), events.REPLAY_HEADER),
                entry.event,
            )
            for entry in await self.history.after(room, after_id, limit)
        ]

    def _start_prune(self, room: str) -> None:
        if self._store is None or room in self._prunes:
            return
        task = asyncio.get_running_loop().create_task(self.prune_unstored(room))
        self._prunes[room] = task
        task.add_done_callback(lambda _: self._prunes.pop(room, None))

    async def prune_unstored(self, room: str) -> None:
        """Drop from the room's unstored set what the store has by now, and dead posts.

        Runs in the background (the post path never waits for the store); a failure only
        means the next prune, or a read, does it.
        """
        if self._store is None:
            return
        try:
            ids = await self.unstored.oldest(room, PRUNE_BATCH)
            if not ids:
                return
            rows = await self._store.history(room, after=ids[0] - 1, limit=PRUNE_BATCH)
            stored = {m.id for m in rows}
            await self.unstored.stored(room, [i for i in ids if i in stored])
            covered = rows[-1].id if len(rows) >= PRUNE_BATCH else None
            missing = [i for i in ids if i not in stored and (covered is None or i < covered)]
            await self.unstored.outstanding(room, missing)  # drops the dead ones
        except Exception:
            log.warning("could not prune the unstored set of room %s", room, exc_info=True)

    async def close(self) -> None:
        """Stop the background prunes (before the Redis client and the store close)."""
        tasks = list(self._prunes.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def unread(self, user: str, room: str) -> int:
        """Messages of ``room`` after the user's read pointer (exact: `read_state`)."""
        [counted] = await self.unread_counts.of(user, [room])
        return counted.unread

    async def read_pointer(self, user: str, room: str) -> int | None:
        return await self.read_state.pointer(user, room)


def _decode(model: type[_T], body: bytes) -> _T:
    try:
        return decode(model, body)
    except SchemaError as exc:
        raise ChatError(str(exc), f"see schemas/{exc.schema}.json") from None
