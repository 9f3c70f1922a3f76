"""Chat layer: ``/app`` destinations (validate, stamp, id, cache, publish), replay, history.

Modules, one job each: `snowflake` (ids), `node_lease` (node ids leased in Redis),
`destinations`, `events` (event JSON + headers), `lua` (the atomic Redis steps; the key names
are `chatstate.keys`'), `post_ledger` (idempotency + cache writes), `recent` (cache reads),
`read_state` (read pointers, exact unread counts), `history` (cache + store merge),
`unstored` (what left the cache before the store had it), `store_api` (the store contract),
`typing` (`TypingGate`: typing indicators rate-limited per user and room, ended on a post,
when the session leaves or when the user is removed), `layer` (`ChatLayer`), `history_api`
(HTTP history routes), `catch_up` (`CatchUpSink`: holds a catch-up subscription's live
messages during the replay, then drops live duplicates), `unread` (the unread counts of many
rooms in one step), `membership` (room rosters and a user's rooms, cached in Redis, rebuilt
from the store), `rooms` (`RoomService`: the rules of rooms), `rooms_api` (its HTTP routes),
`control` (the removal broadcast to every node), `profiles` (the language each user reads:
`ProfileService`, and `ClaimRecorder`, which records tokens' language claims at CONNECT),
`profile_api` (``/api/me/profile``).
"""

from gateway.chat.errors import ChatError, StoreBehindError
from gateway.chat.layer import ChatLayer, ChatResult, IdSource, PublishFn, ReplayItem
from gateway.chat.node_lease import LeaseLostError, NodeLease, NoFreeNodeIdError
from gateway.chat.snowflake import SnowflakeGenerator
from gateway.chat.store_api import MessageReader, StoredMessage
from gateway.chat.typing import TypingGate, TypingSettings

__all__ = [
    "ChatError",
    "ChatLayer",
    "ChatResult",
    "IdSource",
    "LeaseLostError",
    "MessageReader",
    "NoFreeNodeIdError",
    "NodeLease",
    "PublishFn",
    "ReplayItem",
    "SnowflakeGenerator",
    "StoreBehindError",
    "StoredMessage",
    "TypingGate",
    "TypingSettings",
]
