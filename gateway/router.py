"""Where a client's SENDs and SUBSCRIBEs go: the chat layer or the relay.

One :class:`Router` per node, shared by its connections (it implements
:class:`gateway.ports.RouterPort`):

* a SEND to an ``/app/...`` destination goes to the chat layer (validated, stamped, given an
  id, published and confirmed there); any other goes to the relay, which publishes it with a
  publisher confirm. :meth:`Router.mode` tells the connection how to wait for it:
  :meth:`Router.send` returns with the outcome, :attr:`Router.publish` (relay destinations
  that keep their place in the connection's window) once the SEND is written;
* a SUBSCRIBE goes to the relay; one that asks for a catch-up (``cur-max-message-id`` on a
  room topic) is bound with a :class:`~gateway.chat.catch_up.CatchUpSink` in front of the
  client, and the replay is read after the binding exists and before the RECEIPT: a catch-up
  that cannot be served (say the store is behind) is unbound again and refused. A SUBSCRIBE
  to ``/user/queue/unread`` is bound the same way and its first MESSAGE, right after the
  RECEIPT, is the unread snapshot of all the user's rooms (then the live updates held
  meanwhile).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.chat.catch_up import CatchUpSink
from gateway.chat.layer import ReplayItem
from gateway.chat_bridge import ChatBridge
from gateway.delivery import DeliverySink
from gateway.ports import SendMode, Subscription
from gateway.relay import Relay
from gateway.relay.destinations import AMQ_QUEUE_PREFIX

__all__ = ["Router"]

log = logging.getLogger("stompgate.router")


class Router:
    __slots__ = ("_chat", "_handles", "_relay", "publish")

    def __init__(self, relay: Relay, chat: ChatBridge | None = None) -> None:
        self._relay = relay
        self._chat = chat
        self._handles = None if chat is None else chat.handles
        #: A SEND written without waiting (:attr:`SendMode.WINDOW`) is the relay's: its own
        #: ``publish``, bound once (every such SEND calls it: no coroutine of ours around it).
        self.publish = relay.publish

    def mode(self, destination: str) -> SendMode:
        handles = self._handles
        if handles is not None and handles(destination):
            return SendMode.CHAT
        if destination.startswith(AMQ_QUEUE_PREFIX):
            # mandatory: a basic.return names no publish, so these go one at a time on a
            # channel of their own and cannot keep their place among pipelined ones
            return SendMode.ALONE
        return SendMode.WINDOW

    def send(
        self, sink: DeliverySink, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Awaitable[Sequence[tuple[str, str]] | None]:
        """The chat layer's or the relay's coroutine itself (no coroutine of our own around
        it), which returns once the post or the broker's confirm is through; the chat
        layer's with the headers its RECEIPT carries (the message id)."""
        chat = self._chat
        if chat is not None and chat.handles(destination):
            user = sink.user
            if user is None:  # sessions emit no SEND before CONNECTED
                raise RuntimeError("SEND before CONNECT was accepted")
            return chat.handle_send(user, destination, headers, body)
        return self._relay.publish(sink, destination, headers, body)

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
    ) -> tuple[Subscription, Callable[[], None] | None]:
        chat = self._chat
        if chat is not None and sink.user is not None and chat.wants_snapshot(destination):
            user = sink.user

            async def snapshot() -> list[ReplayItem]:
                return [await chat.unread_snapshot(user)]

            return await self._held(sink, subscription_id, destination, ack, headers, 0, snapshot)
        # A bad catch-up header is refused (ChatError) before anything is bound.
        replay = None if chat is None else chat.replay_request(destination, headers)
        if chat is None or replay is None:
            return await self._relay.subscribe(
                sink, subscription_id, destination, ack, headers
            ), None
        return await self._held(
            sink,
            subscription_id,
            destination,
            ack,
            headers,
            replay.after_id,
            functools.partial(chat.replay, replay),
        )

    async def _held(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
        after: int,
        first: Callable[[], Awaitable[list[ReplayItem]]],
    ) -> tuple[Subscription, Callable[[], None]]:
        """Bind with live messages held, read what goes ``first`` (unbinding if that fails),
        and return what hands it over, then the held ones (after the RECEIPT)."""
        catch_up = CatchUpSink(sink, after)  # holds live messages until finish()
        sub = await self._relay.subscribe(catch_up, subscription_id, destination, ack, headers)
        try:
            items = await first()
        except BaseException:
            await _cancel_quietly(sub)
            raise
        return sub, functools.partial(catch_up.finish, subscription_id, items)

    async def release(self, sink: DeliverySink) -> None:
        await self._relay.detach(sink)


async def _cancel_quietly(sub: Subscription) -> None:
    """Undo a binding whose SUBSCRIBE fails after all (the original error is what counts)."""
    try:
        await sub.cancel()
    except Exception:
        log.warning("could not cancel a failed subscription", exc_info=True)
