"""One connection's output: what its STOMP session queued, written to the transport.

:class:`Output` owns the transport's sending half and every write to it: a flush (one
write of all that is queued) with the slow-consumer rule, the RECEIPTs, the one ERROR frame
a client's mistake gets, and the close (the last bytes, the transport closed, aborted after
:data:`CLOSE_GRACE_SECONDS` if the peer does not take them). The connection is told once,
through ``on_close``, so it can release what it holds and let its host forget it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from gateway import stomp_headers
from gateway.errors import ClientError, ErrorMessage
from gateway.metrics import Metrics
from gateway.ports import Outbound
from gateway.stomp import ServerSession, SessionState

__all__ = ["CLOSE_GRACE_SECONDS", "Output"]

log = logging.getLogger("stompgate.connection")

#: A closing connection whose peer does not take the last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0


class Output:
    """The sending side of one client's session. ``closing`` and ``last_write`` (monotonic)
    are for others to read, not to set."""

    __slots__ = (
        "_limit",
        "_log",
        "_metrics",
        "_on_close",
        "closing",
        "last_write",
        "out",
        "session",
    )

    def __init__(
        self,
        out: Outbound,
        session: ServerSession,
        metrics: Metrics,
        *,
        max_outbound_buffer: int,
        on_close: Callable[[str], None],
        log_extra: Mapping[str, str],
    ) -> None:
        self.out = out
        self.session = session
        self._metrics = metrics
        self._limit = max_outbound_buffer
        self._on_close = on_close
        self._log = dict(log_extra)
        self.closing = False
        self.last_write = time.monotonic()

    def receipt(self, receipt: str | None, headers: Sequence[tuple[str, str]] | None = ()) -> None:
        """Queue the RECEIPT a frame asked for (none if ``receipt`` is None)."""
        if receipt is not None:
            self.session.receipt(receipt, headers or ())
            self._metrics.frames_out.inc("RECEIPT")

    def flush(self) -> None:
        """Write whatever the session has queued, in one write; police slow consumers."""
        session = self.session
        out = self.out
        data = session.data_to_send()
        if data:
            out.write(data)
            self.last_write = time.monotonic()
        if self.closing:
            return
        if session.failed:
            self.close()
            return
        # The backlog before this write counts: a message larger than the limit still goes
        # out whole to a client that keeps up (a 16 MiB one on TCP, say).
        limit = self._limit
        queued = out.buffered()
        if queued - len(data) > limit:
            self._metrics.slow_consumer_drops.inc()
            self.fail(
                ErrorMessage.SLOW_CONSUMER,
                detail=f"slow consumer: {queued} bytes queued > max_outbound_buffer {limit}",
                reason="slow_consumer",
            )

    def refuse(self, error: ClientError, receipt: str | None = None) -> None:
        """:meth:`fail` with what a :class:`~gateway.errors.ClientError` says."""
        self.fail(error.message, detail=error.detail, receipt=receipt, reason=error.reason)

    def fail(
        self, message: str, *, detail: str = "", receipt: str | None = None, reason: str = "error"
    ) -> None:
        """Send one ERROR frame that says what went wrong, then close: ``message`` is a short
        :class:`~gateway.errors.ErrorMessage`, ``detail`` the body, ``reason`` the metrics
        label and the ``stompgate-reason`` header."""
        if self.closing:
            return
        self._metrics.errors.labels(reason).inc()
        self._metrics.frames_out.inc("ERROR")
        log.info(
            "closing with ERROR: %s: %s",
            message,
            detail.split("\n", 1)[0],
            extra={**self._log, "reason": reason},
        )
        if self.session.state is not SessionState.CLOSED:
            headers = ((stomp_headers.REASON, reason),)
            self.session.error(message, detail, receipt_id=receipt, headers=headers)
        self.close(reason)

    def close(self, reason: str = "closed") -> None:
        """Write what is queued, close the transport, then tell ``on_close`` (idempotent)."""
        if self.closing:
            return
        self.closing = True
        data = self.session.data_to_send()
        if data:
            self.out.write(data)
        self.out.close()
        # A peer that stops reading must not hold the socket open forever while we flush.
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self.out.abort)
        self._on_close(reason)
