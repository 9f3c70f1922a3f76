"""Catch-up de-duplication: a delivery sink that wraps a client's sink for one subscription.

A catch-up SUBSCRIBE (``cur-max-message-id``) is bound to the room's topic with a
:class:`CatchUpSink` in front of the client's own sink, so the relay delivers live messages to
the wrapper:

1. from the moment the binding exists until the replay has been read, live messages are held;
2. :meth:`CatchUpSink.finish` hands the client the replay, then the held messages;
3. for :data:`DEDUP_SECONDS` after that, a live copy of a replayed message, or of one at or
   below the device's cursor (it has those; one can still be on its way to this node, say held
   by the room order), is dropped. After that the wrapper only passes messages on.

Messages are told apart by their ``stompgate-message-id`` header. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from gateway import stomp_headers
from gateway.chat.layer import ReplayItem
from gateway.delivery import DeliverySink, HeldSink
from gateway.stomp import PreparedMessage

__all__ = ["DEDUP_SECONDS", "CatchUpSink"]

#: After a catch-up replay, live copies of replayed messages are dropped for this long.
DEDUP_SECONDS = 30.0
#: The largest Snowflake id has 19 digits; anything longer is not one.
_MAX_ID_DIGITS = 19


class CatchUpSink(HeldSink):
    """The sink one catch-up subscription is bound with; see the module docstring."""

    __slots__ = ("_after", "_clock", "_replayed", "_until")

    def __init__(
        self, inner: DeliverySink, after: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(inner)
        self._after = after
        self._clock = clock
        self._replayed: set[str] = set()
        self._until = 0.0  # 0.0: holding, or the window is over

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        held = self._held
        if held is not None:
            held.append((subscription_id, message, ack_id))
        elif not (self._until and self._duplicate(message)):
            self._inner.deliver(subscription_id, message, ack_id)

    def finish(self, subscription_id: str, items: Iterable[ReplayItem]) -> None:
        """Send the replay, then the live messages held meanwhile, skipping duplicates."""
        self._until = self._clock() + DEDUP_SECONDS
        inner = self._inner
        for item in items:
            self._replayed.add(str(item.message_id))
            inner.deliver(
                subscription_id, PreparedMessage(item.destination, item.headers, item.body), None
            )
        self.release()

    def _duplicate(self, message: PreparedMessage) -> bool:
        if self._clock() > self._until:
            self._until = 0.0  # the window is over: pass everything on from now on
            self._replayed.clear()
            return False
        message_id = next((v for k, v in message.headers if k == stomp_headers.MESSAGE_ID), None)
        if message_id is None:
            return False
        if message_id in self._replayed:
            self._replayed.discard(message_id)
            return True
        return (
            message_id.isdigit()
            and len(message_id) <= _MAX_ID_DIGITS
            and int(message_id) <= self._after
        )
