"""The ``stompgate-*`` headers the gateway writes on MESSAGE, RECEIPT and ERROR frames, each
name defined here once.

Clients cannot set them: the gatekeeper strips every ``stompgate-*`` (and ``x-stompgate-*``)
header from a client's SEND (:mod:`gateway.auth.hygiene`), so a client that sees one knows the
gateway wrote it. This module imports nothing: every layer may use it.
"""

from __future__ import annotations

__all__ = ["DUPLICATE", "MESSAGE_ID", "REASON", "REPLAY", "REPLAY_MORE", "ROOM_SEQ"]

MESSAGE_ID = "stompgate-message-id"
"""A chat message's Snowflake id (decimal), on live publishes and replays alike, and on the
RECEIPT of a SEND to ``/app/rooms/<room>/messages`` (for a retry: the original id)."""

DUPLICATE = "stompgate-duplicate"
"""``true`` on the RECEIPT of a post whose ``client_id`` the room had already: nothing was
published again, and ``stompgate-message-id`` is the id the first attempt got."""

ROOM_SEQ = "stompgate-room-seq"
"""The message's room ordinal, on live publishes: gateway nodes hand a room's messages on in
this order (`gateway.relay.ordering`)."""

REPLAY = "stompgate-replay"
"""``true`` on a message sent by a catch-up replay rather than live."""

REPLAY_MORE = "stompgate-replay-more"
"""``true`` on the last message of a replay cut at ``--chat-replay-limit``: the client reads
the rest with the history API."""

REASON = "stompgate-reason"
"""On every ERROR frame: the machine-readable reason of our own (``auth``, ``denied``,
``destination``, ``publish``, ``frames_per_second``, ``protocol``, ...), the label of
``stompgate_errors_total{reason}``; the ``message`` header is the short text RabbitMQ's
clients expect (docs/client-contract.md)."""
