"""Errors the relay raises to the gateway, and how broker errors become clear text."""

from __future__ import annotations

import asyncio

import aiormq

__all__ = ["BrokerUnavailableError", "PublishError", "SubscribeError", "describe_amqp_error"]


class PublishError(Exception):
    """A SEND the broker did not take; ``str(exc)`` says why, for the client's ERROR frame."""


class SubscribeError(Exception):
    """A SUBSCRIBE the broker refused (or could not be asked); ``str(exc)`` is for the client."""


class BrokerUnavailableError(Exception):
    """The relay has no working broker connection right now (internal; mapped to the above)."""


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
