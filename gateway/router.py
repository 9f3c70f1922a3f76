"""Where a client's SENDs and SUBSCRIBEs go: the chat layer or the relay.

One :class:`Router` per node, shared by its connections (it implements
:class:`gateway.ports.RouterPort`):

* a SEND to an ``/app/...`` destination goes to the application that handles it: the
  durable-subscriptions API (:mod:`gateway.durable_api`) for
  ``/app/durable-subscriptions/...``, presence (:mod:`gateway.presence_bridge`) for
  ``/app/presence/...`` and ``/app/rooms/<room>/presence``, else the chat layer (validated,
  stamped, given an id, published and confirmed there); any other goes to the relay, which
  publishes it with a publisher confirm. :meth:`Router.mode` tells the connection how to wait
  for it: :meth:`Router.send` returns with the outcome, :attr:`Router.publish` (relay
  destinations that keep their place in the connection's window) once the SEND is written;
* a SUBSCRIBE goes to the relay: planned, the plan's authority authorized for the client
  (the ``authorize`` the connection passes), then run. One that asks for a catch-up
  (``cur-max-message-id`` on a room topic) is bound with a
  :class:`~gateway.chat.catch_up.CatchUpSink` in front of the client, and the replay is read
  after the binding exists and before the RECEIPT: a catch-up that cannot be served (say the
  store is behind, or cannot be read now) is unbound again and refused. A SUBSCRIBE to
  ``/user/queue/unread`` is bound the same way and its first MESSAGE, right after the
  RECEIPT, is the unread snapshot of all the user's rooms (then the live updates held
  meanwhile). Any other with a queue of
  its own is bound with a :class:`~gateway.delivery.HeldSink`, so what its queue held
  already reaches the client after the RECEIPT, never before it;
* leaving a room: an UNSUBSCRIBE from ``/topic/room.<room>``, and a client that is gone, tell
  the chat layer (the typing the session showed there ends).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from gateway.auth.authority import Authorize
from gateway.chat.catch_up import CatchUpSink
from gateway.chat.layer import ReplayItem
from gateway.chat_bridge import ChatBridge
from gateway.delivery import DeliverySink, HeldSink
from gateway.errors import ClientError, ErrorMessage, explain
from gateway.ports import SendMode, Subscription
from gateway.relay import Relay
from gateway.relay.destinations import AMQ_QUEUE_PREFIX
from gateway.relay.planner import ConsumerPlan, SubscribePlan
from store import UNAVAILABLE_ERRORS

__all__ = ["AppPort", "Router"]

log = logging.getLogger("stompgate.router")


class AppPort(Protocol):
    """An application behind some ``/app/...`` destinations, other than the chat layer."""

    def handles(self, destination: str) -> bool: ...

    def handle_send(
        self, user: str, destination: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Awaitable[None]: ...


class Router:
    __slots__ = ("_apps", "_chat", "_handles", "_relay", "publish")

    def __init__(
        self, relay: Relay, chat: ChatBridge | None = None, apps: Sequence[AppPort] = ()
    ) -> None:
        """``apps`` take the ``/app/...`` SENDs they handle (the first that does) before the
        chat layer sees them."""
        self._relay = relay
        self._chat = chat
        self._apps = tuple(apps)
        self._handles = None if chat is None else chat.handles
        if apps and chat is None:
            self._handles = self._app_handles
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
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        authorize: Authorize | None = None,
    ) -> Awaitable[Sequence[tuple[str, str]] | None]:
        """The application's, the chat layer's or the relay's coroutine itself (no coroutine
        of our own around it), which returns once the post or the broker's confirm is
        through; the chat layer's with the headers its RECEIPT carries (the message id).
        ``authorize``: the client's, for what the relay's plan needs."""
        for app in self._apps:
            if app.handles(destination):
                return app.handle_send(_user(sink), destination, headers, body)
        chat = self._chat
        if chat is not None and chat.handles(destination):
            return chat.handle_send(
                _user(sink), destination, headers, body, session=sink.session_id
            )
        return self._relay.publish(sink, destination, headers, body, authorize=authorize)

    def _app_handles(self, destination: str) -> bool:
        return any(app.handles(destination) for app in self._apps)

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
        *,
        authorize: Authorize | None = None,
    ) -> tuple[Subscription, Callable[[], None] | None]:
        """Plan, authorize (``authorize``: the client's; None: a trusted caller), run."""
        chat = self._chat
        relay = self._relay
        first: Callable[[], Awaitable[list[ReplayItem]]] | None = None
        after = 0
        if chat is not None and sink.user is not None and chat.wants_snapshot(destination):
            user = sink.user

            async def snapshot() -> list[ReplayItem]:
                return [await chat.unread_snapshot(user)]

            first = snapshot
        elif chat is not None:
            # A bad catch-up header is refused (ChatError) before anything is bound.
            replay = chat.replay_request(destination, headers)
            if replay is not None:
                first, after = functools.partial(chat.replay, replay), replay.after_id
        plan = relay.plan(sink, subscription_id, destination, ack, headers)
        if authorize is not None and plan.authority:
            await authorize(plan.authority)
        if first is None:
            if isinstance(plan, ConsumerPlan):  # its queue may hold messages already
                held = HeldSink(sink)
                return await relay.open(held, plan), held.release
            return await relay.open(sink, plan), None
        return await self._held(sink, subscription_id, plan, after, first)

    async def _held(
        self,
        sink: DeliverySink,
        subscription_id: str,
        plan: SubscribePlan,
        after: int,
        first: Callable[[], Awaitable[list[ReplayItem]]],
    ) -> tuple[Subscription, Callable[[], None]]:
        """Bind with live messages held, read what goes ``first`` (unbinding if that fails),
        and return what hands it over, then the held ones (after the RECEIPT)."""
        catch_up = CatchUpSink(sink, after)  # holds live messages until finish()
        sub = await self._relay.open(catch_up, plan)
        try:
            items = await first()
        except UNAVAILABLE_ERRORS as exc:  # e.g. the unread counts' store: the client retries
            await _cancel_quietly(sub)
            raise ClientError(
                ErrorMessage.SUBSCRIBE_FAILED,
                explain("the message store cannot be read now; retry shortly", str(exc)),
                reason="store_unavailable",
            ) from exc
        except BaseException:
            await _cancel_quietly(sub)
            raise
        return sub, functools.partial(catch_up.finish, subscription_id, items)

    async def unsubscribed(self, sink: DeliverySink, destination: str) -> None:
        """The client UNSUBSCRIBEd from ``destination``: leaving a room's topic ends the
        typing the session showed there."""
        chat = self._chat
        room = None if chat is None else chat.room_of(destination)
        if chat is not None and room is not None:
            await chat.left_room(sink.session_id, room)

    async def release(self, sink: DeliverySink) -> None:
        try:
            await self._relay.detach(sink)
        finally:
            if self._chat is not None:
                await self._chat.session_gone(sink.session_id)


def _user(sink: DeliverySink) -> str:
    user = sink.user
    if user is None:  # sessions emit no SEND before CONNECTED
        raise RuntimeError("SEND before CONNECT was accepted")
    return user


async def _cancel_quietly(sub: Subscription) -> None:
    """Undo a binding whose SUBSCRIBE fails after all (the original error is what counts)."""
    try:
        await sub.cancel()
    except Exception:
        log.warning("could not cancel a failed subscription", exc_info=True)
