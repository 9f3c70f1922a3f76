"""Exceptions raised by gateway.auth.

Every exception here carries ``message``: a short, fixed-shape text meant for the ``message``
header of a STOMP ERROR frame (or the body of an HTTP 403 at the WebSocket handshake).  The
texts are part of the contract: tests assert them exactly, and operators grep logs for them.
They never contain raw client input that has not passed destination hygiene first, and never
contain secrets (keys, tokens, passcodes).
"""

from __future__ import annotations

from gateway.errors import ClientError

__all__ = [
    "AccessDenied",
    "AccessRefused",
    "AuthError",
    "DestinationRejected",
    "LimitExceeded",
    "QueueArgumentRefused",
]


class AuthError(ClientError):
    """Authentication failed: the session must get an ERROR and be closed.

    ``message`` is short ("token expired", "token audience mismatch", ...); ``detail`` is a
    longer human explanation for the ERROR body (still free of secrets).
    """

    reason = "auth"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message, detail or message)


class AccessDenied(ClientError):  # noqa: N818 -- name fixed by the contract
    """A SUBSCRIBE or SEND is not allowed by the ACL.

    ``message`` names the frame, the destination and the reason, e.g.
    ``"SEND to /topic/room.7 denied: not a member of room 7"``.
    """

    reason = "denied"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class DestinationRejected(ClientError, ValueError):  # noqa: N818 -- name fixed by the contract
    """A destination name failed hygiene; ``message`` says why."""

    reason = "denied"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class LimitExceeded(ClientError):  # noqa: N818 -- name fixed by the contract
    """An abuse limit was breached.

    ``kind`` is a stable label for the breach metric (see ``gateway.auth.limits.BREACH_KINDS``);
    ``message`` is the exact ERROR text.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, reason=kind)
        self.kind = kind


class AccessRefused(ClientError):  # noqa: N818 -- RabbitMQ's word
    """Something a plan needs besides its destination is not the user's to use: a queue, a
    dead-letter target.  ``message`` is RabbitMQ's STOMP plugin's ``Access refused for user
    '<login>'``; ``detail`` names the queue or target and the reason."""

    reason = "queue_denied"

    def __init__(self, user: str, detail: str, *, reason: str | None = None) -> None:
        super().__init__(f"Access refused for user '{user}'", detail, reason=reason)


class QueueArgumentRefused(ClientError):  # noqa: N818 -- a refusal, as the others here
    """A queue argument outside what this deployment allows (``Invalid header``, as
    RabbitMQ's plugin calls a header it cannot take); ``detail`` says which and why."""

    reason = "queue_argument"

    def __init__(self, detail: str) -> None:
        super().__init__("Invalid header", detail)
