"""msgspec Structs mirroring the JSON Schema files in this package, one per event.

The JSON Schema files are the published contract; these Structs are the fast path
(``msgspec.json.decode(body, type=Struct)``). ``tests/schemas`` keeps the two in step.

Conventions shared by every schema:

- Snowflake message ids travel as decimal *strings* (JavaScript numbers lose precision past
  2**53). Timestamps are integer epoch milliseconds, at most 2**53 - 1.
- Every pattern ends in ``$(?!\\n)``: Python's ``re`` (used by msgspec and by ``jsonschema``)
  lets a bare ``$`` match before a trailing newline, so ``"room\\n"`` would otherwise pass.
- Optional fields are ``UNSET`` when absent and never ``null`` on the wire.
- Unknown fields are rejected everywhere: a new field means a new schema version.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

JS_MAX_SAFE_INTEGER = 2**53 - 1

ID_PATTERN = r"^(0|[1-9][0-9]{0,18})$(?!\n)"
ROOM_PATTERN = r"^[A-Za-z0-9_-]{1,64}$(?!\n)"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$(?!\n)"
USER_PATTERN = r"^[^\x00-\x1f\x7f]{1,256}$(?!\n)"
LANG_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$(?!\n)"
META_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$(?!\n)"

PATTERN_WORDS = {
    ID_PATTERN: "be a message id (a decimal string of up to 19 digits)",
    ROOM_PATTERN: "be a room id (1-64 characters from A-Z a-z 0-9 _ -)",
    CLIENT_ID_PATTERN: "be 1-64 characters from A-Z a-z 0-9 . _ ~ -",
    USER_PATTERN: "be 1-256 characters without control characters",
    LANG_PATTERN: "be a language tag such as `en` or `pt-BR`",
    META_KEY_PATTERN: "be 1-64 characters from A-Z a-z 0-9 _ . -",
}
"""Readable wording for each pattern, used in error messages instead of the regex."""

MAX_TEXT = 4000
MAX_META_PROPERTIES = 16
MAX_META_STRING = 256

MessageId = Annotated[str, Meta(pattern=ID_PATTERN, description="Snowflake id, decimal")]
RoomId = Annotated[str, Meta(pattern=ROOM_PATTERN)]
ClientId = Annotated[str, Meta(pattern=CLIENT_ID_PATTERN)]
UserId = Annotated[str, Meta(pattern=USER_PATTERN)]
Lang = Annotated[str, Meta(pattern=LANG_PATTERN, max_length=35)]
EpochMs = Annotated[int, Meta(ge=0, le=JS_MAX_SAFE_INTEGER)]
Text = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)]
MetaKey = Annotated[str, Meta(pattern=META_KEY_PATTERN)]
MetaValue = (
    Annotated[str, Meta(max_length=MAX_META_STRING)]
    | Annotated[int, Meta(ge=-JS_MAX_SAFE_INTEGER, le=JS_MAX_SAFE_INTEGER)]
    | bool
    | None
)
MetaObject = Annotated[dict[MetaKey, MetaValue], Meta(max_length=MAX_META_PROPERTIES)]


class _Body(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for every schema Struct."""


class ChatPost(_Body, frozen=True):
    """chat.post.v1: what a client SENDs to ``/app/rooms/{room}/messages``."""

    client_id: ClientId
    text: Text
    lang: Lang | UnsetType = UNSET
    reply_to: MessageId | UnsetType = UNSET
    meta: MetaObject | UnsetType = UNSET


class ChatMessage(_Body, frozen=True):
    """chat.message.v1: a chat message as published to the room topic and stored."""

    v: Literal[1]
    type: Literal["message"]
    id: MessageId
    room: RoomId
    sender: UserId
    client_id: ClientId
    text: Text
    sent_at: EpochMs
    lang: Lang | UnsetType = UNSET
    reply_to: MessageId | UnsetType = UNSET
    meta: MetaObject | UnsetType = UNSET


MAX_TRANSLATED_TEXT = 12000
"""A translation may be longer than its original (at most `MAX_TEXT`)."""
TranslatedText = Annotated[str, Meta(min_length=1, max_length=MAX_TRANSLATED_TEXT)]


class ChatTranslation(_Body, frozen=True):
    """chat.translation.v1: a translated copy of a message, published by the translate worker."""

    v: Literal[1]
    type: Literal["translation"]
    room: RoomId
    message_id: MessageId
    lang: Lang
    text: TranslatedText
    provider: Annotated[str, Meta(min_length=1, max_length=64)]
    translated_at: EpochMs
    source_lang: Lang | UnsetType = UNSET


class ChatRead(_Body, frozen=True):
    """chat.read.v1: a client's mark-read body for ``/app/rooms/{room}/read``."""

    message_id: MessageId


class ChatReceipt(_Body, frozen=True):
    """chat.receipt.v1: ``user`` has read ``room`` up to and including ``message_id``."""

    v: Literal[1]
    type: Literal["receipt"]
    room: RoomId
    user: UserId
    message_id: MessageId
    read_at: EpochMs


class ChatPresence(_Body, frozen=True):
    """chat.presence.v1: a user's presence changed."""

    v: Literal[1]
    type: Literal["presence"]
    user: UserId
    status: Literal["online", "away", "offline"]
    at: EpochMs
    room: RoomId | UnsetType = UNSET
    last_seen: EpochMs | UnsetType = UNSET


MAX_PRESENCE_USERS = 100
"""Users one presence query may name (and entries a snapshot of a list of users holds)."""

QueryId = Annotated[str, Meta(pattern=CLIENT_ID_PATTERN)]
PresenceUsers = Annotated[list[UserId], Meta(min_length=1, max_length=MAX_PRESENCE_USERS)]


class PresenceQuery(_Body, frozen=True):
    """chat.presence_query.v1: a client's body for ``/app/presence/query`` (``users``) or
    ``/app/rooms/{room}/presence`` (no ``users``: the room's members)."""

    users: PresenceUsers | UnsetType = UNSET
    query_id: QueryId | UnsetType = UNSET


class PresenceState(_Body, frozen=True):
    """chat.presence_state.v1: a client's body for ``/app/presence/invisible``."""

    invisible: bool


class PresenceEntry(_Body, frozen=True):
    """One user's presence in a chat.presence_snapshot.v1."""

    user: UserId
    status: Literal["online", "offline"]
    last_seen: EpochMs | UnsetType = UNSET
    invisible: bool | UnsetType = UNSET


class PresenceSnapshot(_Body, frozen=True):
    """chat.presence_snapshot.v1: the presence of some users now (a query's answer).

    ``more`` is true when a room had more members than one snapshot lists."""

    v: Literal[1]
    type: Literal["presence_snapshot"]
    at: EpochMs
    users: list[PresenceEntry]
    room: RoomId | UnsetType = UNSET
    query_id: QueryId | UnsetType = UNSET
    more: bool | UnsetType = UNSET


class TypingState(_Body, frozen=True):
    """chat.typing_state.v1: a client's body for ``/app/rooms/{room}/typing``."""

    typing: bool


class ChatTyping(_Body, frozen=True):
    """chat.typing.v1: a user started or stopped typing (never cached nor stored)."""

    v: Literal[1]
    type: Literal["typing"]
    room: RoomId
    user: UserId
    typing: bool
    at: EpochMs


class PushNotification(_Body, frozen=True):
    """push.notification.v1: a push notification for a user with no live session."""

    v: Literal[1]
    type: Literal["notification"]
    user: UserId
    room: RoomId
    message_id: MessageId
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    body: Annotated[str, Meta(max_length=1000)]
    sent_at: EpochMs
    data: MetaObject | UnsetType = UNSET


Count = Annotated[int, Meta(ge=0, le=JS_MAX_SAFE_INTEGER)]
RoomName = Annotated[str, Meta(min_length=1, max_length=100)]
MAX_USERS = 1000
"""Users one rooms API request may name (the group limit, a setting, is checked after)."""
UserList = Annotated[list[UserId], Meta(min_length=1, max_length=MAX_USERS)]


class ChatUnread(_Body, frozen=True):
    """chat.unread.v1: a user's unread count of a room changed (their read pointer moved);
    sent to every live session of the user on ``/user/queue/unread``."""

    v: Literal[1]
    type: Literal["unread"]
    room: RoomId
    unread: Count
    read_id: MessageId
    at: EpochMs
    last_id: MessageId | UnsetType = UNSET


class RoomUnreadEntry(_Body, frozen=True):
    """One room of an unread snapshot."""

    room: RoomId
    unread: Count
    read_id: MessageId
    last_id: MessageId | UnsetType = UNSET


class ChatUnreadSnapshot(_Body, frozen=True):
    """chat.unread_snapshot.v1: the unread counts of all of a user's rooms at once (the first
    message of a SUBSCRIBE to ``/user/queue/unread``, and ``GET /api/unread``)."""

    v: Literal[1]
    type: Literal["unread-snapshot"]
    rooms: list[RoomUnreadEntry]
    at: EpochMs


class MemberJoined(_Body, frozen=True):
    """chat.member_joined.v1: ``user`` became a member of ``room`` (``by`` added them, or
    opened or created the room)."""

    v: Literal[1]
    type: Literal["member-joined"]
    room: RoomId
    user: UserId
    role: Literal["owner", "member"]
    by: UserId
    at: EpochMs


class MemberLeft(_Body, frozen=True):
    """chat.member_left.v1: ``user`` is no longer a member of ``room``: they left, or ``by``
    removed them."""

    v: Literal[1]
    type: Literal["member-left"]
    room: RoomId
    user: UserId
    reason: Literal["left", "removed"]
    by: UserId
    at: EpochMs


class RoomCreate(_Body, frozen=True):
    """rooms.create.v1: ``POST /api/rooms``, a new group room (the creator is its owner and a
    member whether listed or not)."""

    name: RoomName
    members: Annotated[list[UserId], Meta(max_length=MAX_USERS)] = []
    lang: Lang | UnsetType = UNSET


class RoomDirect(_Body, frozen=True):
    """rooms.direct.v1: ``POST /api/rooms/direct``, the one-to-one room with ``user``."""

    user: UserId


class RoomMembersAdd(_Body, frozen=True):
    """rooms.members_add.v1: ``POST /api/rooms/{room}/members``."""

    users: UserList


class RoomInfo(_Body, frozen=True):
    """rooms.room.v1: a room as the rooms API returns it."""

    v: Literal[1]
    id: RoomId
    kind: Literal["group", "direct"]
    name: Annotated[str, Meta(max_length=100)]
    created_at: EpochMs
    members: Annotated[list[UserId], Meta(max_length=MAX_USERS)]
    lang: Lang | UnsetType = UNSET
    owner: UserId | UnsetType = UNSET


class MyRoom(_Body, frozen=True):
    """One room of ``GET /api/rooms``: the room, my unread count and read pointer, and its
    newest message."""

    id: RoomId
    kind: Literal["group", "direct"]
    name: Annotated[str, Meta(max_length=100)]
    created_at: EpochMs
    unread: Count
    read_id: MessageId
    lang: Lang | UnsetType = UNSET
    owner: UserId | UnsetType = UNSET
    last_message: ChatMessage | UnsetType = UNSET


class RoomList(_Body, frozen=True):
    """rooms.list.v1: ``GET /api/rooms``, the rooms I belong to, by id."""

    v: Literal[1]
    rooms: list[MyRoom]


class MemberInfo(_Body, frozen=True):
    user: UserId
    role: Literal["owner", "member"]
    joined_at: EpochMs
    read_id: MessageId | UnsetType = UNSET


class RoomMembers(_Body, frozen=True):
    """rooms.members.v1: ``GET /api/rooms/{room}/members``, by join time; each member's read
    pointer when the room is small enough for "seen by"."""

    v: Literal[1]
    room: RoomId
    members: list[MemberInfo]


class UserProfile(_Body, frozen=True):
    """users.profile.v1: ``GET``/``PUT /api/me/profile``, the languages translations use for
    the caller: the one they chose, the one their token claims, and the one that applies."""

    v: Literal[1]
    user: UserId
    lang: Lang | UnsetType = UNSET
    token_lang: Lang | UnsetType = UNSET
    preferred_lang: Lang | UnsetType = UNSET


class ProfileUpdate(_Body, frozen=True):
    """users.profile_update.v1: ``PUT /api/me/profile``; without ``lang`` the choice is cleared."""

    lang: Lang | UnsetType = UNSET


class GatewayConfig(_Body, frozen=True):
    """gateway.config.v1: ``GET /api/config``, what a client page needs to know about the node
    (no credentials needed)."""

    v: Literal[1]
    auth: Literal["dev", "jwt"]
    ws_path: Annotated[str, Meta(min_length=1, max_length=256)]
    chat_max_body: Annotated[int, Meta(ge=1, le=JS_MAX_SAFE_INTEGER)]
    chat_max_text: Annotated[int, Meta(ge=1, le=JS_MAX_SAFE_INTEGER)]
    demo_users: Annotated[list[UserId], Meta(max_length=MAX_USERS)] | UnsetType = UNSET


class DemoTokenRequest(_Body, frozen=True):
    """demo.token_request.v1: ``POST /api/demo/token`` (``--auth dev`` only)."""

    user: UserId


class DemoToken(_Body, frozen=True):
    """demo.token.v1: a development login's credentials, for STOMP CONNECT and the HTTP APIs."""

    v: Literal[1]
    user: UserId
    login: UserId
    passcode: Annotated[str, Meta(max_length=4096)]
    authorization: Annotated[str, Meta(min_length=1, max_length=8192)]


MODELS: dict[str, type[Struct]] = {
    "chat.message.v1": ChatMessage,
    "chat.post.v1": ChatPost,
    "chat.translation.v1": ChatTranslation,
    "chat.read.v1": ChatRead,
    "chat.receipt.v1": ChatReceipt,
    "chat.presence.v1": ChatPresence,
    "chat.presence_query.v1": PresenceQuery,
    "chat.presence_state.v1": PresenceState,
    "chat.presence_snapshot.v1": PresenceSnapshot,
    "chat.typing_state.v1": TypingState,
    "chat.typing.v1": ChatTyping,
    "push.notification.v1": PushNotification,
    "chat.unread.v1": ChatUnread,
    "chat.unread_snapshot.v1": ChatUnreadSnapshot,
    "chat.member_joined.v1": MemberJoined,
    "chat.member_left.v1": MemberLeft,
    "rooms.create.v1": RoomCreate,
    "rooms.direct.v1": RoomDirect,
    "rooms.members_add.v1": RoomMembersAdd,
    "rooms.room.v1": RoomInfo,
    "rooms.list.v1": RoomList,
    "rooms.members.v1": RoomMembers,
    "users.profile.v1": UserProfile,
    "users.profile_update.v1": ProfileUpdate,
    "gateway.config.v1": GatewayConfig,
    "demo.token_request.v1": DemoTokenRequest,
    "demo.token.v1": DemoToken,
}
"""Schema name -> Struct. Each name has a ``<name>.json`` file beside this module."""
