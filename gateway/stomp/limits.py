"""Configurable resource limits for one STOMP connection.

Every limit is enforced by the parser or the session; exceeding one produces a single
ERROR frame whose ``message`` header names the limit and the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (sizes in bytes)."""

    #: Whole frame: command line, headers, blank line, body and the NUL terminator.
    max_frame_size: int = 4 * 1024 * 1024
    #: Header lines per frame (the command line is not counted).
    max_headers: int = 64
    #: Bytes in one header line (or the command line), line terminator excluded.
    max_header_line: int = 8192
    #: Active subscriptions per session.
    max_subscriptions: int = 256
    #: Open transactions per session.
    max_transactions: int = 16
    #: Frames buffered in one transaction.
    max_transaction_frames: int = 1024
    #: Bytes (headers and bodies) buffered in one transaction; 0 = no limit.
    max_transaction_bytes: int = 8 * 1024 * 1024
    #: Events parsed but not yet taken by ``ServerSession.events_received()``.
    max_pending_frames: int = 1024
