"""What a broker message is delivered to: a client, as the relay sees it.

:class:`DeliverySink` is implemented by the connection adapter (one per client) and by what
wraps one: :class:`HeldSink`, which holds a new subscription's deliveries until its RECEIPT is
out, and the chat layer's catch-up sink, which is one. The relay delivers to it. A sink
renders the fan-out's MESSAGE frames with :class:`MessageHeads`. This module imports only
the STOMP core, so every layer may use it.
"""

from __future__ import annotations

from typing import Protocol

from gateway.stomp import MessageHead, PreparedMessage, message_head

__all__ = ["MAX_CACHED_HEADS", "DeliverySink", "HeldSink", "MessageHeads", "SystemSink"]

#: Encoded MESSAGE heads kept per session (one per subscription id seen; a client that
#: keeps inventing subscription ids only makes the cache start over).
MAX_CACHED_HEADS = 64


class DeliverySink(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def user(self) -> str | None: ...

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        """Queue ``message`` for the client, now, in-process (never blocks, never awaits).

        ``ack_id`` is set only for ``client``/``client-individual`` subscriptions: the
        client's ACK/NACK for this message must come back as ``subscription.ack(ack_id)``.
        """


class HeldSink:
    """A sink in front of a client's own that holds what is delivered to it until
    :meth:`release`, then passes everything on.

    A subscription with a queue of its own may have messages waiting (a durable subscription
    whose owner was away): the broker hands them over as soon as the consumer exists, before
    the SUBSCRIBE is receipted. Bound with one of these, they reach the client after the
    RECEIPT, as with RabbitMQ's plugin: the adapter calls :meth:`release` once the RECEIPT is
    queued.
    """

    __slots__ = ("_held", "_inner")

    def __init__(self, inner: DeliverySink) -> None:
        self._inner = inner
        self._held: list[tuple[str, PreparedMessage, str | None]] | None = []

    @property
    def session_id(self) -> str:
        return self._inner.session_id

    @property
    def user(self) -> str | None:
        return self._inner.user

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        held = self._held
        if held is not None:
            held.append((subscription_id, message, ack_id))
        else:
            self._inner.deliver(subscription_id, message, ack_id)

    def release(self) -> None:
        """Stop holding: pass on what was held (through :meth:`deliver`), in order."""
        held, self._held = self._held or [], None
        for subscription_id, message, ack_id in held:
            self.deliver(subscription_id, message, ack_id)


class SystemSink:
    """The node itself as the relay's client: what it publishes on its own account (chat
    events, answers of the node's APIs). It has no user, no reply queues, and gets nothing."""

    __slots__ = ("session_id",)

    user: str | None = None

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        return None


class MessageHeads(dict[str, MessageHead]):
    """One session's MESSAGE heads by subscription id, for
    :meth:`PreparedMessage.render_numbered`: the hot path of every fan-out, where the head
    up to the message-id's number is encoded once per subscription (message ids are
    ``<message_id_prefix><number>``, ``number`` counted here). A head is made on its first
    lookup (``heads[subscription_id]``: a plain dict lookup once it exists)."""

    __slots__ = ("number", "prefix", "version")

    def __init__(self, version: str, message_id_prefix: str) -> None:
        super().__init__()
        self.version = version  # the session's negotiated STOMP version
        self.prefix = message_id_prefix
        self.number = 0  # the last message-id's number

    def __missing__(self, subscription_id: str) -> MessageHead:
        if len(self) >= MAX_CACHED_HEADS:
            self.clear()
        head = self[subscription_id] = message_head(self.version, subscription_id, self.prefix)
        return head
