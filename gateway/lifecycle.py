"""Lifecycle events: the one place a node says what happens to its client connections.

A :class:`gateway.node.Node` is given a tuple of :class:`LifecycleListener` at construction
and calls every one of them, in order, when a connection

* is opened (a socket was accepted and counted: ``on_opened``),
* is authenticated (its CONNECT was accepted; ``user`` and ``transport_name`` are set:
  ``on_authenticated``),
* is closed (``on_closed``, with a short reason: the ``stompgate_errors_total`` reason of the
  ERROR it got, or ``disconnect``, ``protocol``, ``peer_closed``, ``closed``), and
* was active: it read anything from its client, frames and heart-beats alike. Activity is
  announced in batches, once per node tick (``on_activity``, authenticated connections only),
  so the read path pays one flag test per read and no allocation.

Presence (online while any session is live, refreshed by heart-beats in batches) and push
(only to members with no live session) are meant to subscribe here. Today the node comes
with :class:`MetricsListener` (open sessions, accepted connections) and :class:`LogListener`
("connected" lines). A listener must not raise and must not block: it runs inside the
node's bookkeeping, on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from gateway.auth.identity import Identity
from gateway.metrics import Metrics

__all__ = ["ConnectionInfo", "LifecycleListener", "LogListener", "MetricsListener"]

log = logging.getLogger("stompgate.connection")


class ConnectionInfo(Protocol):
    """What a listener may read of a connection."""

    @property
    def session_id(self) -> str: ...

    @property
    def transport_name(self) -> str: ...

    @property
    def peer(self) -> str: ...

    @property
    def user(self) -> str | None:
        """None until the CONNECT is accepted."""
        ...

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version; None until the CONNECT is accepted."""
        ...

    @property
    def identity(self) -> Identity | None:
        """Who the token (or dev login) says the user is, claims included; None until the
        CONNECT is accepted."""
        ...


class LifecycleListener(Protocol):
    def on_opened(self, conn: ConnectionInfo) -> None: ...

    def on_authenticated(self, conn: ConnectionInfo) -> None: ...

    def on_closed(self, conn: ConnectionInfo, reason: str) -> None: ...

    def on_activity(self, conns: Sequence[ConnectionInfo]) -> None:
        """Connections that read something since the last call (each once)."""
        ...


class MetricsListener:
    """``stompgate_connections_total`` and ``stompgate_sessions``, by transport."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_opened(self, conn: ConnectionInfo) -> None:
        self._metrics.connections_total.labels(conn.transport_name).inc()
        self._metrics.sessions.labels(conn.transport_name).inc()

    def on_authenticated(self, conn: ConnectionInfo) -> None:
        pass

    def on_closed(self, conn: ConnectionInfo, reason: str) -> None:
        self._metrics.sessions.labels(conn.transport_name).dec()

    def on_activity(self, conns: Sequence[ConnectionInfo]) -> None:
        pass


class LogListener:
    """One INFO line per accepted CONNECT; a DEBUG line per close, with its reason."""

    __slots__ = ()

    def on_opened(self, conn: ConnectionInfo) -> None:
        pass

    def on_authenticated(self, conn: ConnectionInfo) -> None:
        log.info(
            "connected",
            extra={
                "session": conn.session_id,
                "user": conn.user,
                "peer": conn.peer,
                "version": conn.version,
                "transport": conn.transport_name,
            },
        )

    def on_closed(self, conn: ConnectionInfo, reason: str) -> None:
        log.debug("closed", extra={"session": conn.session_id, "reason": reason})

    def on_activity(self, conns: Sequence[ConnectionInfo]) -> None:
        pass
