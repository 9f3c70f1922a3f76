"""The window of one client's SENDs that were written to the broker without waiting.

A relay SEND (with a receipt or without) is written to the broker and the connection
handles the next frame at once; the broker's confirm comes back later, and confirms of
SENDs that took different publish channels may come back in any order. At most
``--max-unconfirmed`` such SENDs are in flight per client: when that many are, the next one
waits for room (``settle(max - 1)``), which pushes back on a client that publishes faster
than the broker confirms.

A SEND's RECEIPT vouches for it and for everything the client sent before it, so it waits in
a FIFO until its own confirm and every earlier SEND's have arrived: the SENDs in flight are
kept in *batches* (a run of SENDs without a receipt, or one SEND with a receipt), and a
batch's RECEIPT is released once its SEND and every SEND of the batches before it are
confirmed. RECEIPTs therefore go out in the order the SENDs came.

A SEND the broker refuses ends the session with one ERROR, which takes its place in the same
FIFO (the broker may confirm out of order even on one channel): it is handed to ``refuse``
once every batch before the refused SEND's is released, so the client gets the RECEIPTs
before it, then the ERROR, and nothing after it (:attr:`ConfirmWindow.refusing` tells the
connection to handle no more frames meanwhile).

Whatever else must vouch for every earlier SEND (another frame with a receipt, DISCONNECT,
COMMIT, an awaited SEND) waits until none is in flight (``settle()``); by then every pending
RECEIPT has been released. Closing the window (the connection is closing) ends every wait
and releases no more RECEIPTs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from gateway.errors import ClientError

__all__ = ["Batch", "ConfirmWindow"]

#: ``release(receipt_id, headers)``: queue a RECEIPT whose SENDs are all confirmed.
Release = Callable[[str, Sequence[tuple[str, str]] | None], None]
#: ``refuse(error, receipt_id)``: end the session with the ERROR that says why a SEND was
#: refused (with its ``receipt-id`` if it asked for a RECEIPT).
Refuse = Callable[[ClientError, str | None], None]


class Batch:
    """SENDs in flight: either a run of SENDs without a receipt (more may join the last
    one), or one SEND with a receipt. :meth:`on_confirm` is each one's publish callback."""

    __slots__ = ("closed", "headers", "number", "receipt", "unconfirmed", "window")

    def __init__(self, window: ConfirmWindow, number: int, *, closed: bool) -> None:
        self.window = window
        self.number = number  # batches are numbered in the order they began
        self.closed = closed  # no more SENDs join it (a receipted SEND's own batch)
        self.unconfirmed = 0
        self.receipt: str | None = None  # set once the receipted SEND is written
        self.headers: Sequence[tuple[str, str]] | None = None

    def on_confirm(self, error: ClientError | None, seconds: float) -> None:
        """The broker's answer to one SEND of this batch (None: confirmed)."""
        window = self.window
        window.observe(seconds)
        if error is not None:
            window.refused(self, error)
        window.done(self)


class ConfirmWindow:
    __slots__ = (
        "_batches",
        "_closed",
        "_numbered",
        "_refuse",
        "_release",
        "_waiter",
        "_wake_at",
        "in_flight",
        "observe",
        "receipts",
        "refusal",
    )

    def __init__(
        self, *, observe: Callable[[float], None], release: Release, refuse: Refuse
    ) -> None:
        self.in_flight = 0  # written, not confirmed yet
        self.receipts = 0  # RECEIPTs waiting for confirms
        self.observe = observe  # told how long each confirm or refusal took
        self._release = release
        self._refuse = refuse
        self._batches: deque[Batch] = deque()  # oldest first; the last one may be open
        self._numbered = 0
        #: the earliest refused SEND's batch and why, its ERROR not handed out yet
        self.refusal: tuple[Batch, ClientError] | None = None
        self._waiter: asyncio.Future[None] | None = None  # wakes when in_flight <= _wake_at
        self._wake_at = 0
        self._closed = False

    @property
    def refusing(self) -> bool:
        """A SEND was refused: the session ends with its ERROR (once the RECEIPTs before it
        are out); nothing more is to be handled."""
        return self.refusal is not None

    def add(self, receipted: bool = False) -> Batch:
        """Count one more SEND in flight (``receipted``: it asks for a RECEIPT, which
        :meth:`receipt_after` arms before it is written); its publish callback is the batch's
        :meth:`Batch.on_confirm`."""
        batches = self._batches
        if not receipted and batches and not batches[-1].closed:
            batch = batches[-1]
        else:
            if batches:  # no more SENDs join the last batch
                last = batches[-1]
                if not last.unconfirmed and last.receipt is None:
                    batches.pop()  # nothing in flight, nothing to release: it would block
                else:
                    last.closed = True
            self._numbered += 1
            batch = Batch(self, self._numbered, closed=receipted)
            batches.append(batch)
        batch.unconfirmed += 1
        self.in_flight += 1
        return batch

    def receipt_after(
        self, batch: Batch, receipt: str, headers: Sequence[tuple[str, str]] | None
    ) -> None:
        """``batch``'s SEND asks for a RECEIPT: release it once that SEND and every earlier
        one is confirmed. Armed before the SEND is written, so no confirm can come first."""
        batch.receipt = receipt
        batch.headers = headers
        self.receipts += 1
        self._release_confirmed()

    def done(self, batch: Batch) -> None:
        """One SEND of ``batch`` was confirmed or refused, or was not written after all."""
        batch.unconfirmed -= 1
        self.in_flight -= 1
        if not batch.unconfirmed and batch is self._batches[0]:
            self._release_confirmed()
        waiter = self._waiter
        if waiter is not None and self.in_flight <= self._wake_at:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def unsent(self, batch: Batch) -> None:
        """A SEND of ``batch`` was not written after all: no confirm will come for it, and
        no RECEIPT goes out for it."""
        if batch.receipt is not None:
            batch.receipt = None
            self.receipts -= 1
        self.done(batch)

    def refused(self, batch: Batch, error: ClientError) -> None:
        """The broker refused a SEND of ``batch``: its ERROR goes out once every earlier
        batch is released (at once if they are), instead of any RECEIPT after it."""
        if self._closed:
            return
        refusal = self.refusal
        if refusal is None or batch.number < refusal[0].number:
            self.refusal = (batch, error)
        self._release_confirmed()

    def _release_confirmed(self) -> None:
        batches = self._batches
        refusal = self.refusal
        while batches and not self._closed:
            head = batches[0]
            if refusal is not None and head is refusal[0]:
                self._refuse(refusal[1], head.receipt)  # the connection closes
                self.close()
                return
            if head.unconfirmed or not head.closed:
                return
            batches.popleft()
            receipt = head.receipt
            if receipt is not None:  # None: its SEND was not written after all
                self.receipts -= 1
                self._release(receipt, head.headers)

    async def settle(self, at_most: int = 0) -> bool:
        """Wait until at most ``at_most`` SENDs are in flight; False if the window closed."""
        while self.in_flight > at_most and not self._closed:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            self._wake_at = at_most
            await waiter
        return not self._closed

    def close(self) -> None:
        """The connection is closing: end any wait, wait no more, release no RECEIPT."""
        self._closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
