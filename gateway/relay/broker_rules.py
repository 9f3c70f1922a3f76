"""What the broker would refuse beyond one client, refused before it gets there.

Theory of operation. AMQP 0-9-1 has two kinds of errors. A *channel* error (403, 404, 405,
406) closes one channel. A *connection* error (501 FRAME_ERROR, 530 NOT_ALLOWED, 540
NOT_IMPLEMENTED, 541 INTERNAL_ERROR...) closes the whole connection with every channel on it.
A node has a few AMQP connections that all of its clients share, so one client's frame must
never cause a connection error, and a channel error must land on a channel whose failure
reaches that client only. The relay keeps both rules in three ways:

1. **Refused here**: every request that would be a connection error, and every request that
   would be a channel error on a channel other clients share, is refused with a
   :class:`~gateway.relay.errors.BrokerRuleError` before anything is sent. The pure checks
   are in this module; the planner parses what a client may set (destinations, prefetch,
   ``x-stream-offset``, queue arguments), the wire refuses a content header that would not
   fit in one frame, and a consumer refuses a NACK on a stream.
2. **On the client's own channel**: each client's consumers, and their ACKs and NACKs, run on
   a channel of that client's own (:mod:`.consumers`); a refused ``basic.consume`` closes that
   channel only.
3. **On a throw-away channel**: declares, binds, passive checks and deletes (:mod:`.topology`).

Every AMQP method a client's frame causes, and what can go wrong with it (found on RabbitMQ
3.10 by trying each case; RabbitMQ 4 agrees where it still has the feature):

=================  ========================  =============================================
frame              AMQP method               refused before the broker (else: where it fails)
=================  ========================  =============================================
SUBSCRIBE          ``queue.declare``         ``x-max-age`` not ``<digits><Y|M|D|h|m|s>``
                                             (541 on a stream), ``x-queue-master-locator``
                                             other than client-local/min-masters/random
                                             (541); other refusals (406 PRECONDITION_FAILED,
                                             403 ACCESS_REFUSED, 405 RESOURCE_LOCKED) on a
                                             throw-away channel
                   ``queue.declare`` passive ``/amq/queue/``: 404 or 405, throw-away channel
                   ``queue.bind``            404 (no exchange), throw-away channel
                   ``basic.qos``             prefetch-count 0-65535 (planner); never
                                             ``prefetch_size`` or ``global`` (540/406)
                   ``basic.consume``         ``x-stream-offset`` only as first, last, next,
                                             an integer or a timestamp (anything else is 541);
                                             prefetch-count 0 on a stream (406); never
                                             ``no_ack`` (540 on a stream: ``ack:auto`` is
                                             acked by the relay); a consumer tag of at most
                                             255 bytes; a refusal (404, 405, 406) closes the
                                             client's own channel
UNSUBSCRIBE        ``basic.cancel``          nothing can fail; unacked messages are requeued
                                             with ``basic.nack`` except on a stream (540)
                   ``queue.delete``          durable subscription only, throw-away channel
ACK                ``basic.ack``             only delivery tags the channel holds unsettled
                                             (an unknown or settled tag is 406): an ACK of
                                             an unknown id is ignored
NACK               ``basic.nack``            refused on a stream (540 NOT_IMPLEMENTED); tags
                                             as for ACK
DISCONNECT         ``basic.cancel``,         unacked messages go back to classic and quorum
                   ``channel.close``         queues; on a stream they are left (never
                                             nacked: 540), and the channel is closed
SEND               ``queue.declare``         as for SUBSCRIBE (``/queue/``)
                   ``exchange.declare``      passive, throw-away channel (404)
                   ``basic.publish``         ``expiration`` above 4294967295 ms (406),
                                             ``CC``/``BCC`` headers (406: RabbitMQ needs an
                                             array there, STOMP has only strings), a body
                                             over ``max_message_size`` (406), properties
                                             over one frame (501, the wire); routing keys
                                             and short strings over 255 bytes (the planner);
                                             ``user-id`` is never forwarded (406). A publish
                                             to an exchange other than ``amq.topic`` and the
                                             default one runs on a channel of that exchange
                                             only (404, 403 for an internal exchange)
=================  ========================  =============================================

The channel count of a connection is bounded too (``channel_max``, 530 past it): the
consumer pool opens another consume connection before it would be exceeded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from pamqp import commands as spec
from pamqp.common import FieldValue

from gateway.errors import ErrorMessage

from .errors import BrokerRuleError

__all__ = [
    "MAX_EXPIRATION",
    "ROUTING_HEADERS",
    "check_consume",
    "check_publish",
    "check_queue_arguments",
    "headers_too_large",
    "stream_nack",
]

#: The largest per-message TTL (``expiration``, ms) every RabbitMQ version takes.
MAX_EXPIRATION: Final = 4_294_967_295
#: Headers RabbitMQ reads as extra routing keys; it refuses them unless they are arrays.
ROUTING_HEADERS: Final = ("CC", "BCC")
_MAX_AGE: Final = re.compile(r"[0-9]+[YMDhms]")
_MASTER_LOCATORS: Final = ("client-local", "min-masters", "random")


def check_publish(
    properties: spec.Basic.Properties, body_size: int, *, max_message_size: int
) -> None:
    """Refuse a publish the broker would refuse by closing its channel: a shared one."""
    expiration = properties.expiration
    if expiration is not None and expiration.isdigit() and int(expiration) > MAX_EXPIRATION:
        raise BrokerRuleError(
            ErrorMessage.PRECONDITION_FAILED,
            f"PRECONDITION_FAILED - invalid expiration '{expiration[:40]}': the header "
            f"'expiration' is at most {MAX_EXPIRATION} (milliseconds).",
            reason="expiration",
        )
    headers = properties.headers
    if headers:
        for name in ROUTING_HEADERS:
            if name in headers:
                raise BrokerRuleError(
                    ErrorMessage.PRECONDITION_FAILED,
                    f"PRECONDITION_FAILED - invalid message: the header '{name}' would be "
                    "read by RabbitMQ as a list of extra routing keys, which a STOMP header "
                    "cannot express. Rename the header.",
                    reason="routing_header",
                )
    if body_size > max_message_size:
        raise BrokerRuleError(
            ErrorMessage.PRECONDITION_FAILED,
            f"PRECONDITION_FAILED - message size {body_size} is larger than the maximum "
            f"message size {max_message_size}.",
            reason="message_size",
        )


def headers_too_large(size: int, limit: int) -> BrokerRuleError:
    """A SEND whose properties (mostly its headers) take ``size`` bytes in the AMQP content
    header, which must fit in one frame of at most ``limit`` bytes."""
    return BrokerRuleError(
        ErrorMessage.HEADERS_TOO_LARGE,
        f"The SEND's headers take {size} bytes as AMQP message properties; at most {limit} "
        "fit in one AMQP frame. Send fewer or shorter headers (the body has no such limit).",
        reason="headers_size",
    )


def check_queue_arguments(arguments: Mapping[str, FieldValue]) -> None:
    """Refuse queue arguments the broker answers with a connection error (541)."""
    max_age = arguments.get("x-max-age")
    if max_age is not None and not (isinstance(max_age, str) and _MAX_AGE.fullmatch(max_age)):
        raise BrokerRuleError(
            ErrorMessage.PRECONDITION_FAILED,
            f"PRECONDITION_FAILED - invalid arg 'x-max-age': '{str(max_age)[:40]}' is not a "
            "number followed by one of the units Y, M, D, h, m or s (e.g. 7D).",
            reason="queue_argument",
        )
    locator = arguments.get("x-queue-master-locator")
    if locator is not None and locator not in _MASTER_LOCATORS:
        raise BrokerRuleError(
            ErrorMessage.PRECONDITION_FAILED,
            f"PRECONDITION_FAILED - invalid arg 'x-queue-master-locator': "
            f"'{str(locator)[:40]}' is not one of {', '.join(_MASTER_LOCATORS)}.",
            reason="queue_argument",
        )


def check_consume(*, stream: bool, prefetch: int) -> None:
    """Refuse a consumer the broker refuses on a queue known to be a stream."""
    if stream and prefetch == 0:
        raise BrokerRuleError(
            ErrorMessage.PRECONDITION_FAILED,
            "PRECONDITION_FAILED - consumer prefetch count is not set: a stream needs a "
            "prefetch-count of 1 or more.",
            reason="stream_prefetch",
        )


def stream_nack(destination: str) -> BrokerRuleError:
    """A NACK on a subscription to a stream (RabbitMQ answers it with 540, a connection
    error, as its STOMP plugin's clients see)."""
    return BrokerRuleError(
        ErrorMessage.NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues: "
        f"{destination} is a stream, which keeps every message; ACK what you have read "
        "and subscribe again with x-stream-offset to read it again.",
        reason="stream_nack",
    )
