"""The one root of every error a client can see, and the short texts it may carry.

A :class:`ClientError` becomes one STOMP ERROR frame (or an HTTP 4xx): ``message`` is the
short, stable text for the frame's ``message`` header, ``detail`` the explanation for its
``text/plain`` body, and ``reason`` a stable label for the ``stompgate_errors_total{reason}``
metric, the logs and the frame's ``stompgate-reason`` header (like h11's ``ProtocolError``
with its status hint). The session adapter catches this class, and only this class, to
report a client's mistake; anything else is a bug.

The convention every raise site follows (issue 14.8, RabbitMQ's STOMP plugin's): ``message``
is a member of :class:`ErrorMessage` (or, for what the protocol core sends itself,
:class:`gateway.stomp.ProtocolMessage`), never text made at the raise site: clients match on
it. What varies (the destination, the header, the limit and its value, why) goes in
``detail``: first line what happened, further lines why or what to do. Each subclass has
its usual ``message``; a raise site passes ``message=`` only for another case. The client
contract (docs/client-contract.md) lists every text, and a test holds it to these enums.

This module imports nothing of the project: every layer may raise these.
"""

from __future__ import annotations

import enum

__all__ = ["ClientError", "ErrorMessage", "explain"]


class ErrorMessage(enum.StrEnum):
    """The ``message`` header of every ERROR frame the node sends for a
    :class:`ClientError` or a node event (timeouts, limits, broker loss, shutdown).

    Where RabbitMQ's STOMP plugin has the case, the text is the plugin's, letter for letter;
    a broker refusal carries the AMQP error name, as the plugin writes it.
    """

    # CONNECT (RabbitMQ: "Bad CONNECT", body "Access refused for user '<login>'")
    BAD_CONNECT = "Bad CONNECT"
    CREDENTIAL_EXPIRED = "Credential expired"  # RabbitMQ's, when the token runs out
    # destinations and headers (RabbitMQ's texts)
    INVALID_DESTINATION = "Invalid destination"
    UNKNOWN_DESTINATION = "Unknown destination"
    DUPLICATED_SUBSCRIPTION = "Duplicated subscription identifier"
    INVALID_HEADER = "Invalid header"
    INVALID_ID = "Invalid id"
    # what the broker or the ACL refused (RabbitMQ: the AMQP error name, body its reply text)
    ACCESS_REFUSED = "access_refused"
    NOT_FOUND = "not_found"
    RESOURCE_LOCKED = "resource_locked"
    PRECONDITION_FAILED = "precondition_failed"
    NOT_IMPLEMENTED = "not_implemented"
    HEADERS_TOO_LARGE = "Headers too large"
    # the relay
    SEND_NOT_CONFIRMED = "SEND not confirmed"
    SUBSCRIBE_FAILED = "SUBSCRIBE failed"
    BROKER_CONNECTION_LOST = "Broker connection lost"
    DURABLE_LIMIT_EXCEEDED = "Durable subscription limit exceeded"
    DURABLE_UNAVAILABLE = "Durable subscriptions unavailable"
    # the chat layer
    INVALID_MESSAGE = "Invalid message"
    MESSAGE_TOO_LARGE = "Message too large"
    HISTORY_NOT_AVAILABLE = "History not available"
    REMOVED_FROM_ROOM = "Removed from room"
    # the rooms HTTP API (reason phrases of its 4xx answers)
    NO_SUCH_ROOM = "no such room"
    NOT_A_MEMBER = "not a member"
    NOT_ALLOWED = "not allowed"
    ROOM_IS_FULL = "room is full"
    INVALID_DIRECT_ROOM = "invalid one-to-one room"
    # limits and timers
    RATE_LIMIT_EXCEEDED = "Rate limit exceeded"
    TOO_MANY_CONNECTIONS = "Too many connections"
    TOO_MANY_SUBSCRIPTIONS = "Too many subscriptions"
    FRAME_TOO_LARGE = "Frame too large"
    SLOW_CONSUMER = "Slow consumer"
    LIMIT_EXCEEDED = "Limit exceeded"
    CONNECT_TIMEOUT = "CONNECT timeout"
    IDLE_TIMEOUT = "Idle timeout"
    FRAME_TIMEOUT = "Frame timeout"
    HEARTBEAT_TIMEOUT = "Heart-beat timeout"
    SERVER_SHUTTING_DOWN = "Server shutting down"


class ClientError(Exception):
    """Something the client asked for cannot be done; the client is told why.

    Subclasses set a class-level ``reason``; a raise site may pass a more precise one.
    ``str(exc)`` is the explanation (``detail``; ``message`` if there is none), for logs and
    for texts built from it.
    """

    reason: str = "error"
    maybe_done: bool = False
    """True when what failed may still have taken effect: a publish whose confirm was lost
    with the connection, or timed out (the broker may hold the message)."""

    def __init__(self, message: str, detail: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.detail or self.message


def explain(what: str, why: str = "") -> str:
    """An ERROR body: ``what`` happened, then ``why`` (or what to do) on the next line."""
    return f"{what}\n{why}" if why and why != what else what
