"""One client's SENDs, from an authorized frame to the broker's confirm and their RECEIPTs.

A SEND is authorized (the access policy stamps the sender and drops spoofed headers), then
the router says where it goes (:class:`~gateway.ports.SendMode`). A relay SEND outside a
transaction, with a receipt or without, is written to the broker and the connection handles
the next frame at once. Its confirm comes back through the
:class:`~gateway.confirm_window.ConfirmWindow`'s callback, called by the relay inside its
read; its RECEIPT, if it asked for one, is released by the window once its own confirm and
every earlier SEND's have arrived, in the order the SENDs came (the ``receipt`` callback the
connection gives queues it). A refusal ends the session with the ERROR that says so (the
``refuse`` callback the connection gives) once the RECEIPTs of the SENDs before it are out;
until then :attr:`Sender.refusing` tells the connection to handle nothing more.

The window bounds how many SENDs are in flight (``--max-unconfirmed``; the next one waits
for room; 0: every SEND is awaited) and makes whatever must vouch for every earlier SEND
wait until none is (:meth:`Sender.must_settle`, then :meth:`Sender.settle`): a frame other
than SEND with a receipt, a DISCONNECT (a refused SEND can still be reported), a COMMIT (its
SENDs may take another channel); and, inside :meth:`Sender.send`, a SEND that is awaited (an
``/amq/queue/`` one takes a channel of its own) and a chat post with a receipt (its RECEIPT
comes after the earlier ones). Awaited SENDs (chat posts, ``/amq/queue/``, a COMMIT's) get
their RECEIPT when they are done, their confirm latency measured here for the relay's.
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

    __slots__ = (
        "_access",
        "_max_unconfirmed",
        "_metrics",
        "_receipt",
        "_refuse",
        "_router",
        "_sink",
        "window",
    )

    def __init__(
        self,
        sink: DeliverySink,
        *,
        access: AccessPort,
        router: RouterPort,
        metrics: Metrics,
        max_unconfirmed: int,
        refuse: Callable[[ClientError, str | None], None],
        receipt: Callable[[str, Sequence[tuple[str, str]] | None], None],
    ) -> None:
        self._sink = sink
        self._access = access
        self._router = router
        self._metrics = metrics
        self._max_unconfirmed = max_unconfirmed  # 0: every SEND waits for its confirm
        self._refuse = refuse  # ends the session with one ERROR (with a receipt-id or not)
        self._receipt = receipt  # queues a SEND's RECEIPT (also from inside the relay's read)
        self.window: ConfirmWindow | None = None  # made by the first SEND not awaited

    @property
    def refusing(self) -> bool:
        """The broker refused a SEND: the session ends with its ERROR once the RECEIPTs before
        it are out; no further frame is to be handled."""
        window = self.window
        return window is not None and window.refusal is not None

    def must_settle(self, event: events.Event) -> bool:
        """Whether ``event`` must wait (:meth:`settle`) until every earlier SEND is confirmed."""
        window = self.window
        return window is not None and window.in_flight > 0 and _settles_first(event)

    async def settle(self) -> bool:
        """Wait until no SEND is in flight (every pending RECEIPT is out then); False if one
        was refused (its ERROR is out: the connection is closing)."""
        return self.window is None or await self.window.settle()

    async def settle_receipts(self) -> bool:
        """Before an ERROR: wait until the RECEIPTs of the SENDs in flight are out (at once
        if none is pending); False if a SEND was refused (its ERROR is the one)."""
        window = self.window
        if window is None or not (window.receipts or window.refusal is not None):
            return True
        return await window.settle()

    async def send(
        self,
        identity: Identity,
        event: events.SendRequested,
        *,
        authorize: Authorize,
        pipelined: bool = True,
    ) -> None:
        """Send, and see that its RECEIPT (if it asked for one) is queued when it is due.
        ``pipelined``: it may go without waiting for its confirm (False inside a COMMIT)."""
        destination = event.destination
        headers = await self._access.authorize_send(identity, destination, event.headers)
        router = self._router
        mode = router.mode(destination)
        window = self.window
        size = self._max_unconfirmed
        receipt = event.receipt
        if pipelined and size and mode is SendMode.WINDOW:
            if window is None:
                window = self.window = ConfirmWindow(
                    observe=self._metrics.confirm_latency.observe,
                    release=self._receipt,
                    refuse=self._refuse,
                )
            elif window.in_flight >= size:
                settled = await window.settle(size - 1)
                if not settled:
                    return  # closing: an earlier SEND failed and its ERROR is out
            if window.refusal is not None:
                return  # an earlier SEND was refused: its ERROR is on its way
            batch = window.add(receipt is not None)
            if receipt is not None:
                window.receipt_after(batch, receipt, None)
            try:
                await router.publish(
                    self._sink,
                    destination,
                    headers,
                    event.body,
                    on_confirm=batch.on_confirm,
                    authorize=authorize,
                )
            except BaseException:
                window.unsent(batch)  # nothing was written: no confirm, no RECEIPT
                raise
            return
        # An awaited SEND: earlier ones settle first (their RECEIPTs go out before its own;
        # /amq/queue/ ones take a channel of their own), except a chat post that asks for
        # no RECEIPT (the chat layer keeps its own order).
        settles = mode is not SendMode.CHAT or receipt is not None
        if window is not None and settles and not await window.settle():
            return
        if mode is SendMode.CHAT:
            extra = await router.send(self._sink, destination, headers, event.body)
        else:
            started = time.perf_counter()
            extra = await router.send(
                self._sink, destination, headers, event.body, authorize=authorize
            )
            self._metrics.confirm_latency.observe(time.perf_counter() - started)
        if receipt is not None:
            self._receipt(receipt, extra)

    def close(self) -> None:
        """The connection is closing: a wait for confirms ends with it, no RECEIPT follows."""
        if self.window is not None:
            self.window.close()


def _settles_first(event: events.Event) -> bool:
    """Whether ``event`` must wait until every earlier SEND is confirmed: a frame other than
    SEND with a receipt (a RECEIPT vouches for all that came before; a SEND's own waits in the
    window, or :meth:`Sender.send` settles first), DISCONNECT (a refused SEND can still be
    reported), and COMMIT (its SENDs may take another channel)."""
    if isinstance(event, events.SendRequested):
        return False
    return getattr(event, "receipt", None) is not None or isinstance(
        event, events.DisconnectRequested | events.TransactionCommitted
    )
