"""One client's SENDs, from an authorized frame to the broker's confirm.

A SEND is authorized (the access policy stamps the sender and drops spoofed headers), then
the router says where it goes (:class:`~gateway.ports.SendMode`): the chat layer takes it
whole and is awaited; a relay SEND that waits for its confirm (it has a receipt, it is
inside a COMMIT, or it goes to ``/amq/queue/``) is awaited too, its confirm latency
measured here; a relay SEND without a receipt is written to the broker and the connection
handles the next frame at once. Its confirm comes back through :meth:`Sender.on_confirm`,
called by the relay inside its read, and a refusal ends the session with the ERROR that says
so (the ``refuse`` callback the connection gives).

The :class:`~gateway.confirm_window.ConfirmWindow` bounds how many such SENDs are in flight
(``--max-unconfirmed``; the next one waits for room) and makes whatever must vouch for every
earlier SEND wait until none is (:meth:`Sender.must_settle`, then :meth:`Sender.settle`): a
frame with a receipt, a DISCONNECT (a refused SEND can still be reported), a COMMIT (its
SENDs may take another channel); and, inside :meth:`Sender.send`, an ``/amq/queue/`` SEND
(it takes a channel of its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gateway.auth.authority import Authorize
from gateway.auth.identity import Identity
from gateway.confirm_window import ConfirmWindow
from gateway.errors import ClientError
from gateway.metrics import Metrics
from gateway.ports import AccessPort, DeliverySink, RouterPort, SendMode
from gateway.stomp import events

__all__ = ["Sender"]


class Sender:
    """The SEND path of one connection, and its window of unconfirmed SENDs."""

    __slots__ = ("_access", "_max_unconfirmed", "_metrics", "_refuse", "_router", "_sink", "window")

    def __init__(
        self,
        sink: DeliverySink,
        *,
        access: AccessPort,
        router: RouterPort,
        metrics: Metrics,
        max_unconfirmed: int,
        refuse: Callable[[ClientError], None],
    ) -> None:
        self._sink = sink
        self._access = access
        self._router = router
        self._metrics = metrics
        self._max_unconfirmed = max_unconfirmed  # 0: every SEND waits for its confirm
        self._refuse = refuse  # ends the session with one ERROR
        self.window: ConfirmWindow | None = None  # made by the first SEND without a receipt

    def must_settle(self, event: events.Event) -> bool:
        """Whether ``event`` must wait (:meth:`settle`) until every earlier SEND is confirmed."""
        window = self.window
        return window is not None and window.in_flight > 0 and _settles_first(event)

    async def settle(self) -> bool:
        """Wait until no SEND is in flight; False if one was refused (its ERROR is out: the
        connection is closing)."""
        return self.window is None or await self.window.settle()

    async def send(
        self,
        identity: Identity,
        event: events.SendRequested,
        *,
        authorize: Authorize,
        pipelined: bool = False,
    ) -> Sequence[tuple[str, str]] | None:
        """Send; the headers its RECEIPT carries besides ``receipt-id`` (chat posts: the id).
        ``pipelined``: it may go without waiting for its confirm (it has no receipt)."""
        destination = event.destination
        headers = await self._access.authorize_send(identity, destination, event.headers)
        router = self._router
        mode = router.mode(destination)
        if mode is SendMode.CHAT:
            return await router.send(self._sink, destination, headers, event.body)
        window = self.window
        size = self._max_unconfirmed
        if pipelined and size and mode is SendMode.WINDOW:
            if window is None:
                window = self.window = ConfirmWindow()
            elif window.in_flight >= size:
                settled = await window.settle(size - 1)
                if not settled:
                    return None  # closing: an earlier SEND failed and its ERROR is out
            window.in_flight += 1
            try:
                await router.publish(
                    self._sink,
                    destination,
                    headers,
                    event.body,
                    on_confirm=self.on_confirm,
                    authorize=authorize,
                )
            except BaseException:
                window.done()  # nothing was written: no confirm will come
                raise
            return None
        # A SEND that waits for its confirm; /amq/queue/ ones take a channel of their own,
        # so earlier SENDs settle first (a receipt or a COMMIT settled them already).
        if window is not None and not await window.settle():
            return None
        started = time.perf_counter()
        extra = await router.send(self._sink, destination, headers, event.body, authorize=authorize)
        self._metrics.confirm_latency.observe(time.perf_counter() - started)
        return extra

    def on_confirm(self, error: ClientError | None, seconds: float) -> None:
        """The broker's answer to a SEND written without waiting."""
        self._metrics.confirm_latency.observe(seconds)
        if error is not None:
            self._refuse(error)
        if self.window is not None:
            self.window.done()

    def close(self) -> None:
        """The connection is closing: a wait for confirms ends with it."""
        if self.window is not None:
            self.window.close()


def _settles_first(event: events.Event) -> bool:
    """Whether ``event`` must wait until every earlier SEND is confirmed: anything with a
    receipt (a RECEIPT vouches for all that came before), DISCONNECT (a refused SEND can
    still be reported), and COMMIT (its SENDs may take another channel)."""
    return getattr(event, "receipt", None) is not None or isinstance(
        event, events.DisconnectRequested | events.TransactionCommitted
    )
