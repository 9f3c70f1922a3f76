"""Building the JSON events the chat layer publishes, and their STOMP headers.

Live publishes and replays use the same header builders, so a client cannot tell a replayed
message from a live one (apart from ``stompgate-replay: true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway import stomp_headers
from gateway.chat.snowflake import parse
from schemas.models import ChatPost

Headers = tuple[tuple[str, str], ...]

JSON = "application/json"
REPLAY_HEADER = (stomp_headers.REPLAY, "true")


def message_event(
    *, message_id: int, room: str, sender: str, post: ChatPost, sent_at: int
) -> bytes:
    """chat.message.v1 for an accepted post."""
    event: dict[str, Any] = {
        "v": 1,
        "type": "message",
        "id": str(message_id),
        "room": room,
        "sender": sender,
        "client_id": post.client_id,
        "text": post.text,
        "sent_at": sent_at,
    }
    if isinstance(post.lang, str):
        event["lang"] = post.lang
    if isinstance(post.reply_to, str):
        event["reply_to"] = post.reply_to
    if isinstance(post.meta, Mapping):
        event["meta"] = post.meta
    return orjson.dumps(event)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """chat.message.v1 of a post with its ``id`` and ``sent_at`` left open: the reserve step
    picks the id inside Redis (`gateway.chat.post_ledger`) and fills them in there.

    ``head + id + middle + sent_at + tail`` (decimal digits, ``sent_at`` the id's own
    timestamp) is exactly `message_event` for that id: `fill` does it in Python.
    """

    head: bytes
    middle: bytes
    tail: bytes

    def fill(self, message_id: int) -> bytes:
        sent_at = parse(message_id).ts_ms
        return b"%s%d%s%d%s" % (self.head, message_id, self.middle, sent_at, self.tail)


_ID_HEAD = b'{"v":1,"type":"message","id":"'
_SENT_AT = b',"sent_at":'


def message_template(*, room: str, sender: str, post: ChatPost) -> MessageTemplate:
    """The `MessageTemplate` of ``post`` by ``sender`` in ``room``."""
    event = message_event(message_id=0, room=room, sender=sender, post=post, sent_at=0)
    # Every string before sent_at is JSON-escaped, so the first `,"sent_at":` is the field.
    middle_at = len(_ID_HEAD) + 1
    tail_at = event.index(_SENT_AT) + len(_SENT_AT)
    if not event.startswith(_ID_HEAD + b"0") or event[tail_at : tail_at + 1] != b"0":
        raise AssertionError("chat.message.v1 no longer starts with its id")
    return MessageTemplate(_ID_HEAD, event[middle_at:tail_at], event[tail_at + 1 :])


def receipt_event(*, room: str, user: str, message_id: int, read_at: int) -> bytes:
    """chat.receipt.v1."""
    return orjson.dumps(
        {
            "v": 1,
            "type": "receipt",
            "room": room,
            "user": user,
            "message_id": str(message_id),
            "read_at": read_at,
        }
    )


def typing_event(*, room: str, user: str, typing: bool, at: int) -> bytes:
    """chat.typing.v1."""
    return orjson.dumps(
        {"v": 1, "type": "typing", "room": room, "user": user, "typing": typing, "at": at}
    )


def message_headers(
    message_id: int, sender: str, client_id: str, *, room_seq: int | None = None
) -> Headers:
    headers: Headers = (
        ("event-type", "message"),
        ("content-type", JSON),
        (stomp_headers.MESSAGE_ID, str(message_id)),
        ("sender", sender),
        ("client-id", client_id),
        ("persistent", "true"),
    )
    if room_seq is not None:
        headers += ((stomp_headers.ROOM_SEQ, str(room_seq)),)
    return headers


def message_headers_from_event(event: bytes) -> Headers:
    """The live-publish headers of a stored or cached chat.message.v1."""
    doc = orjson.loads(event)
    return message_headers(int(doc["id"]), str(doc["sender"]), str(doc["client_id"]))


def translation_headers() -> Headers:
    """The headers a translation event reaches a subscriber with, as the translation worker
    publishes it (``event-type: translation``, JSON, persistent); no ``stompgate-message-id``:
    that names messages (catch-up de-duplicates by it), and a translation's message id is in
    its body."""
    return (("event-type", "translation"), ("content-type", JSON), ("persistent", "true"))


def receipt_headers(user: str) -> Headers:
    return event_headers("receipt", user)


def typing_headers(user: str) -> Headers:
    return (
        ("event-type", "typing"),
        ("content-type", JSON),
        ("sender", user),
        ("persistent", "false"),
    )


def unread_event(*, room: str, unread: int, read_id: int, last_id: int | None, at: int) -> bytes:
    """chat.unread.v1."""
    event: dict[str, Any] = {
        "v": 1,
        "type": "unread",
        "room": room,
        "unread": unread,
        "read_id": str(read_id),
        "at": at,
    }
    if last_id is not None:
        event["last_id"] = str(last_id)
    return orjson.dumps(event)


def unread_entry(*, room: str, unread: int, read_id: int, last_id: int | None) -> dict[str, Any]:
    """One room of chat.unread_snapshot.v1."""
    entry: dict[str, Any] = {"room": room, "unread": unread, "read_id": str(read_id)}
    if last_id is not None:
        entry["last_id"] = str(last_id)
    return entry


def unread_snapshot_event(*, rooms: list[dict[str, Any]], at: int) -> bytes:
    """chat.unread_snapshot.v1 (``rooms``: `unread_entry` values)."""
    return orjson.dumps({"v": 1, "type": "unread-snapshot", "rooms": rooms, "at": at})


def member_event(
    kind: str, *, room: str, user: str, by: str, at: int, role: str = "", reason: str = ""
) -> bytes:
    """chat.member_joined.v1 (``kind`` member-joined, with ``role``) or chat.member_left.v1
    (``kind`` member-left, with ``reason``: left or removed)."""
    event: dict[str, Any] = {"v": 1, "type": kind, "room": room, "user": user}
    if kind == "member-joined":
        event["role"] = role
    else:
        event["reason"] = reason
    event.update(by=by, at=at)
    return orjson.dumps(event)


def event_headers(event_type: str, user: str) -> Headers:
    """Headers of a persistent event about ``user`` (unread counts, membership changes)."""
    return (
        ("event-type", event_type),
        ("content-type", JSON),
        ("sender", user),
        ("persistent", "true"),
    )
