"""What a transport is given to turn a new socket into a connection.

A transport implements :class:`gateway.ports.Outbound` (the sending half of its socket) and
feeds what it reads to the :class:`~gateway.connection.Connection` an :class:`OpenConnection`
makes for it; the connection's other collaborators are the node's business, not the
transport's.
"""

from __future__ import annotations

from typing import Protocol

from gateway import stomp_headers
from gateway.connection import Connection
from gateway.errors import ClientError
from gateway.ports import Outbound
from gateway.stomp import ProtocolError, serialize

__all__ = ["OpenConnection", "refusal_frame"]


def refusal_frame(error: ClientError) -> bytes:
    """The one ERROR frame for a socket refused before it has a session (e.g. too many
    connections from its IP), as a session would write it: nothing escaped (no version is
    agreed yet), the reason in ``stompgate-reason``."""
    headers = ((stomp_headers.REASON, error.reason),)
    return serialize(ProtocolError(error.message, error.detail, None, headers).frame(), "1.0")


class OpenConnection(Protocol):
    """Make the connection for a socket that passed the transport's checks, and count it on
    the node (from then on, closing the connection releases the socket's IP slot)."""

    def __call__(
        self, out: Outbound, *, transport_name: str, peer: str, handshake_token: str | None = None
    ) -> Connection: ...
