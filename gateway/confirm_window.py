"""The window of one client's SENDs that were written to the broker without waiting.

A SEND without a receipt is written to the broker and the connection handles the next frame
at once; the broker's confirm comes back later. At most ``--max-unconfirmed`` such SENDs are
in flight per client: when that many are, the next one waits for room (``settle(max - 1)``),
which pushes back on a client that publishes faster than the broker confirms. A frame with a
receipt (and DISCONNECT, and COMMIT) first waits until none is in flight (``settle()``), so
a RECEIPT vouches for everything the client sent before it. Closing the window (the
connection is closing) ends every wait.
"""

from __future__ import annotations

import asyncio

__all__ = ["ConfirmWindow"]


class ConfirmWindow:
    __slots__ = ("_closed", "_waiter", "_wake_at", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0  # written, not confirmed yet (the connection adds each one)
        self._waiter: asyncio.Future[None] | None = None  # wakes when in_flight <= _wake_at
        self._wake_at = 0
        self._closed = False

    def done(self) -> None:
        """One SEND was confirmed or refused, or was not written after all."""
        self.in_flight -= 1
        waiter = self._waiter
        if waiter is not None and self.in_flight <= self._wake_at:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def settle(self, at_most: int = 0) -> bool:
        """Wait until at most ``at_most`` SENDs are in flight; False if the window closed."""
        while self.in_flight > at_most and not self._closed:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            self._wake_at = at_most
            await waiter
        return not self._closed

    def close(self) -> None:
        """The connection is closing: end any wait, and wait no more."""
        self._closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
