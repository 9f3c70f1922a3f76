"""What a session's input costs: every frame and byte charged to its rate limits, and the
bytes it holds (an unfinished frame, open transactions) against the node's budget.

Pure: no clock, no I/O; the connection passes ``now`` and what its STOMP session reports.

* Bytes are charged as they arrive: at the end of each read, whatever was not yet paid for
  with a frame (the start of an unfinished frame, heart-beats) is charged, so a frame
  trickled in many reads pays as it comes and never waits until it is whole.
* Frames that produce no event of their own (BEGIN, and every frame held in a transaction)
  are charged like any other: with the COMMIT that releases them at the latest, and at the
  end of each read.
* ``NodeInputBudget`` bounds the bytes all sessions of a node hold at once (unfinished
  frames and open transactions). A session whose holding would push the node past it gets
  the breach ``buffered_bytes``: the session that grows is the one refused, and the others
  keep what they hold.
"""

from __future__ import annotations

from typing import Protocol

from gateway.auth.limits import Breach

__all__ = ["HeldInput", "InputMeter", "NodeInputBudget"]


class Charger(Protocol):
    def charge(self, frames: int, size: int, now: float) -> Breach | None: ...


class HeldInput(Protocol):
    """What a session holds at the end of a read (a STOMP ``ServerSession`` is one)."""

    @property
    def frames_held(self) -> int: ...  # frames held in open transactions

    @property
    def buffered_input(self) -> int: ...  # bytes of the unfinished frame

    @property
    def transaction_bytes(self) -> int: ...  # bytes held in open transactions


class NodeInputBudget:
    """Bytes of unfinished frames and open transactions held by all sessions of a node;
    ``limit`` 0: no limit (still counted, for metrics)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.used = 0

    def meter(self, burst: int = 0) -> InputMeter:
        return InputMeter(self, burst)


class InputMeter:
    """One session's input accounting. ``burst`` caps one byte charge (0: no cap), so a frame
    up to the largest allowed size can always pass in one read."""

    __slots__ = ("_budget", "_burst", "frame_started", "frames_held_paid", "held", "unpaid")

    def __init__(self, budget: NodeInputBudget, burst: int = 0) -> None:
        self._budget = budget
        self._burst = burst
        self.unpaid = 0  # bytes read but not yet charged
        self.frames_held_paid = 0  # of the session's frames_held, those charged
        self.held = 0  # bytes this session holds against the node's budget
        #: When the unfinished frame the session holds began (None: it holds none).
        self.frame_started: float | None = None

    def arrived(self, size: int) -> None:
        self.unpaid += size

    def _cost(self) -> int:
        burst = self._burst
        return min(self.unpaid, burst) if burst else self.unpaid

    def charge_event(
        self, rates: Charger, now: float, *, frames_held: int | None = None
    ) -> Breach | None:
        """Charge the frame of one event and the bytes read so far; ``frames_held`` (the
        session's count, for a COMMIT) also charges the frames held until now."""
        extra = 0 if frames_held is None else frames_held - self.frames_held_paid
        breach = rates.charge(1 + extra, self._cost(), now)
        if breach is None:
            self.unpaid = 0
            if frames_held is not None:
                self.frames_held_paid = frames_held
        return breach

    def charge_rest(self, rates: Charger, frames_held: int, now: float) -> Breach | None:
        """At the end of a read: the frames held and the bytes not yet paid for."""
        frames = frames_held - self.frames_held_paid
        size = self._cost()
        if not (frames or size):
            return None
        breach = rates.charge(frames, size, now)
        if breach is None:
            self.unpaid = 0
            self.frames_held_paid = frames_held
        return breach

    def end_read(
        self, rates: Charger, now: float, held: HeldInput, *, progressed: bool
    ) -> tuple[Breach | None, bool]:
        """After a read was handled: charge what is still unpaid (the frames ``held``, the
        bytes of an unfinished frame), hold its unfinished frame and open transactions
        against the node's budget, and note when the unfinished frame began (``progressed``:
        a frame completed in this read). The breach, if any, and whether an unfinished
        frame's timer started."""
        frames_held = held.frames_held
        buffered = held.buffered_input
        if frames_held != self.frames_held_paid:
            progressed = True
        breach = self.charge_rest(rates, frames_held, now) or self.hold(
            buffered + held.transaction_bytes
        )
        started = False
        if not buffered:
            self.frame_started = None
        elif progressed or self.frame_started is None:
            started = self.frame_started is None
            self.frame_started = now
        return breach, started

    def hold(self, size: int) -> Breach | None:
        """This session now holds ``size`` bytes; the breach if the node cannot take them
        (then the session holds what it held before, until :meth:`release`)."""
        budget = self._budget
        grow = size - self.held
        if grow > 0 and budget.limit and budget.used + grow > budget.limit:
            return Breach(
                "buffered_bytes",
                f"node input budget exceeded: this session would hold {size} bytes of "
                f"unfinished frames and open transactions; the node holds {budget.used} of "
                f"max_buffered_bytes {budget.limit}\n"
                "Send smaller frames and transactions, or reconnect later.",
            )
        budget.used += grow
        self.held = size
        return None

    def release(self) -> None:
        self._budget.used -= self.held
        self.held = 0
