"""Exceptions raised by gateway.auth.

Every exception here is a :class:`~gateway.errors.ClientError`: ``message`` is the short,
stable text of the ERROR frame's ``message`` header (one of
:class:`~gateway.errors.ErrorMessage`, RabbitMQ's where the plugin has the case), ``detail``
the explanation for its body (or for an HTTP 4xx at the WebSocket handshake), first line
the precise case. The texts are part of the contract: tests assert them exactly, and
operators grep logs for them. They never contain raw client input that has not passed
destination hygiene first, and never contain secrets (keys, tokens, passcodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from gateway.errors import ClientError, ErrorMessage, explain

__all__ = [
    "LIMIT_MESSAGES",
    "AccessDenied",
    "AccessRefused",
    "AuthError",
    "DestinationRejected",
    "LimitExceeded",
    "QueueArgumentRefused",
]


class AuthError(ClientError):
    """Authentication failed: the session must get an ERROR and be closed.

    ``text`` is short ("token expired", "token audience mismatch", ...), ``why`` a longer
    human explanation (still free of secrets); the ERROR body is ``text``, then ``why`` on the
    next line. ``message`` is RabbitMQ's ``Bad CONNECT`` (``Credential expired`` when a token
    runs out mid-session).
    """

    reason = "auth"

    def __init__(
        self, text: str, why: str = "", *, message: ErrorMessage = ErrorMessage.BAD_CONNECT
    ) -> None:
        super().__init__(message, explain(text, why))
        self.text = text


class AccessDenied(ClientError):  # noqa: N818 -- name fixed by the contract
    """A SUBSCRIBE or SEND is not allowed by the ACL: ``message`` is ``access_refused`` (as
    RabbitMQ's plugin reports a permission it refuses), ``detail`` names the frame, the
    destination and the reason, e.g. ``"SEND to /topic/room.7 denied: not a member of room 7"``.
    """

    reason = "denied"

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorMessage.ACCESS_REFUSED, detail)


class DestinationRejected(ClientError, ValueError):  # noqa: N818 -- name fixed by the contract
    """A destination name failed hygiene: ``Invalid destination``; ``detail`` says why."""

    reason = "denied"

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorMessage.INVALID_DESTINATION, detail)


#: The ERROR ``message`` of each limit breach kind (``gateway.auth.limits.BREACH_KINDS``); a
#: kind not listed gets ``Limit exceeded``.
LIMIT_MESSAGES: Final[Mapping[str, ErrorMessage]] = MappingProxyType(
    {
        "connections_per_ip": ErrorMessage.TOO_MANY_CONNECTIONS,
        "connections_per_user": ErrorMessage.TOO_MANY_CONNECTIONS,
        "frames_per_second": ErrorMessage.RATE_LIMIT_EXCEEDED,
        "bytes_per_second": ErrorMessage.RATE_LIMIT_EXCEEDED,
        "subscriptions": ErrorMessage.TOO_MANY_SUBSCRIPTIONS,
        "connect_timeout": ErrorMessage.CONNECT_TIMEOUT,
        "idle_timeout": ErrorMessage.IDLE_TIMEOUT,
        "frame_size": ErrorMessage.FRAME_TOO_LARGE,
        "slow_consumer": ErrorMessage.SLOW_CONSUMER,
    }
)


class LimitExceeded(ClientError):  # noqa: N818 -- name fixed by the contract
    """An abuse limit was breached.

    ``kind`` is a stable label for the breach metric (see ``gateway.auth.limits.BREACH_KINDS``)
    and the ERROR's reason; ``message`` is the short text for that kind
    (:data:`LIMIT_MESSAGES`), ``detail`` names the limit and the value, e.g.
    ``"too many connections from 10.0.0.7: 4 > max_connections_per_ip 3"``.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(LIMIT_MESSAGES.get(kind, ErrorMessage.LIMIT_EXCEEDED), detail, reason=kind)
        self.kind = kind


class AccessRefused(ClientError):  # noqa: N818 -- RabbitMQ's word
    """Something a plan needs besides its destination is not the user's to use: a queue, a
    dead-letter target.  ``message`` is ``access_refused`` (as for the ACL); ``detail`` begins
    with RabbitMQ's STOMP plugin's ``Access refused for user '<login>'`` and names the queue
    or target and the reason."""

    reason = "queue_denied"

    def __init__(self, user: str, detail: str, *, reason: str | None = None) -> None:
        super().__init__(
            ErrorMessage.ACCESS_REFUSED,
            explain(f"Access refused for user '{user}'", detail),
            reason=reason,
        )


class QueueArgumentRefused(ClientError):  # noqa: N818 -- a refusal, as the others here
    """A queue argument outside what this deployment allows (``Invalid header``, as
    RabbitMQ's plugin calls a header it cannot take); ``detail`` says which and why."""

    reason = "queue_argument"

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorMessage.INVALID_HEADER, detail)
