"""Errors the relay raises to the gateway, and how broker errors become clear text."""

from __future__ import annotations

import asyncio

import aiormq

from gateway.errors import ClientError, ErrorMessage

__all__ = [
    "BrokerRefusedError",
    "BrokerRuleError",
    "BrokerUnavailableError",
    "PublishError",
    "SubscribeError",
    "describe_amqp_error",
]


class PublishError(ClientError):
    """A SEND the broker did not take. ``text`` says why and is the ERROR body; ``message``
    is ``SEND not confirmed``, or another :class:`~gateway.errors.ErrorMessage` for a case
    RabbitMQ names (``not_found``, ``Invalid header``, ...)."""

    reason = "publish"

    def __init__(
        self, text: str, *, message: ErrorMessage = ErrorMessage.SEND_NOT_CONFIRMED
    ) -> None:
        super().__init__(message, text)
        self.text = text


class SubscribeError(ClientError):
    """A SUBSCRIBE the broker refused (or could not be asked). ``text`` says why and is the
    ERROR body; ``message`` is ``SUBSCRIBE failed``, or another
    :class:`~gateway.errors.ErrorMessage` for a case RabbitMQ names (``not_found``,
    ``Duplicated subscription identifier``, ``Invalid header``, ...)."""

    reason = "subscribe"

    def __init__(self, text: str, *, message: ErrorMessage = ErrorMessage.SUBSCRIBE_FAILED) -> None:
        super().__init__(message, text)
        self.text = text


class BrokerRuleError(ClientError):
    """A request refused before it reached the broker, because the broker would refuse it
    in a way that reaches further than this client: an AMQP *connection* error (which would
    close a connection the node shares), or a channel error on a channel other clients'
    requests share. See :mod:`gateway.relay.broker_rules`.

    ``message`` is what RabbitMQ's STOMP plugin sends in the same case (the broker's error
    name, e.g. ``not_implemented``, ``precondition_failed``; ``Invalid header`` for a header
    it cannot parse), ``detail`` says what was refused and why, ``reason`` is the metric
    label."""

    reason = "broker_rule"


class BrokerUnavailableError(Exception):
    """The relay has no working broker connection right now (internal; mapped to the above)."""


class BrokerRefusedError(Exception):
    """The broker refused a declare, a passive check or a bind (internal and neutral: the
    relay turns it into a :class:`SubscribeError` or a :class:`PublishError` with the same
    ``text``). ``code`` is the AMQP reply code: 403 access refused, 404 not found, 405
    locked (exclusive to another connection), 406 precondition failed; 0 if none was given."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    def message(self, default: ErrorMessage) -> ErrorMessage:
        """The ERROR ``message`` for this refusal: the AMQP error name of ``code``, as
        RabbitMQ's STOMP plugin writes it (``not_found``, ...), else ``default``."""
        return _REFUSALS.get(self.code, default)


_REFUSALS = {
    403: ErrorMessage.ACCESS_REFUSED,
    404: ErrorMessage.NOT_FOUND,
    405: ErrorMessage.RESOURCE_LOCKED,
    406: ErrorMessage.PRECONDITION_FAILED,
}


def describe_amqp_error(exc: BaseException) -> str:
    """One line of text for an aiormq/asyncio error, e.g. the broker's ``reply_text``."""
    if isinstance(exc, asyncio.CancelledError):
        return "broker connection closed"
    if isinstance(exc, aiormq.exceptions.ChannelInvalidStateError):
        return "broker channel closed"
    if isinstance(exc, aiormq.exceptions.AMQPError):
        texts = [a for a in exc.args if isinstance(a, str) and a]
        if texts:
            return texts[-1]
        return type(exc).__name__
    text = str(exc)
    return text or type(exc).__name__
