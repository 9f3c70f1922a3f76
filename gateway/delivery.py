"""What a broker message is delivered to: a client, as the relay sees it.

:class:`DeliverySink` is implemented by the connection adapter (one per client) and by what
wraps one (the chat layer's catch-up sink); the relay delivers to it. This module imports
only the STOMP core, so every layer may use it.
"""

from __future__ import annotations

from typing import Protocol

from gateway.stomp import PreparedMessage

__all__ = ["DeliverySink"]


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
