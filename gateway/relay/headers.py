"""STOMP headers ⇄ AMQP message properties and queue arguments, as RabbitMQ's STOMP plugin
maps them.

SEND → AMQP (:func:`properties_from_send`):

=====================  ==========================================================
STOMP header           AMQP
=====================  ==========================================================
content-type           content_type
content-encoding       content_encoding
persistent             delivery_mode: 2 unless ``persistent:false`` (the plugin
                       defaults to transient; the gateway receipts only what the
                       broker stored, so it defaults to persistent)
priority               priority (integer 0-255)
correlation-id         correlation_id
reply-to               reply_to (``/temp-queue/`` is rewritten by the relay)
expiration             expiration (milliseconds, digits only)
amqp-message-id        message_id
timestamp              timestamp (seconds since the epoch)
type                   type
app-id                 app_id
user-id                dropped: RabbitMQ checks it against the gateway's own login
destination, receipt,  dropped: frame-level headers
transaction,
content-length,
message-id
anything else          the AMQP headers table, as strings (longstr)
=====================  ==========================================================

AMQP → MESSAGE (:func:`headers_from_delivery`): ``redelivered``, then the properties above
back under the same names (``persistent:true`` only for delivery mode 2; ``reply-to``
without a destination prefix gets ``/reply-queue/``, as the plugin does), then the headers
table entries whose values are strings, numbers or booleans, as strings (a headers-table
entry named like a property that is set is dropped: the property wins). Values are taken as
the publisher sent them: :class:`gateway.stomp.PreparedMessage` escapes or drops, per STOMP
version, what could end a line or the frame (a NUL, CR or LF from any AMQP publisher).
(Checked side by side with the plugin for a native AMQP publisher: every header the plugin
shows comes with the same value. The plugin shows only string and 32- or 64-bit integer table
values; the gateway also shows narrower integers, booleans, floats, byte strings and
timestamps.)
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Final

from pamqp import commands as spec
from pamqp.common import FieldTable, FieldValue

from gateway.auth.errors import QueueArgumentRefused

from .destinations import PREFIXES, REPLY_QUEUE_PREFIX

__all__ = [
    "HeaderError",
    "first_headers",
    "headers_from_delivery",
    "properties_from_send",
    "queue_arguments",
]

MAX_SHORTSTR: Final = 255
#: Field names in an AMQP table are at most 128 bytes (AMQP 0-9-1, 4.2.5.5); pamqp would cut
#: a longer one short, so such a header is refused instead.
MAX_FIELD_NAME: Final = 128

#: Frame-level SEND headers that never reach the broker.
_NOT_FORWARDED: Final = frozenset(
    {"destination", "receipt", "transaction", "content-length", "message-id", "user-id"}
)

#: SEND headers mapped onto AMQP properties (not copied into the headers table).
_PROPERTY_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-encoding",
        "persistent",
        "priority",
        "correlation-id",
        "reply-to",
        "expiration",
        "amqp-message-id",
        "timestamp",
        "type",
        "app-id",
    }
)

#: Names a MESSAGE frame sets itself; headers-table entries with these names are dropped.
_MESSAGE_RESERVED: Final = frozenset(
    {"destination", "message-id", "subscription", "ack", "content-length", "redelivered"}
)
#: Headers :func:`headers_from_delivery` makes from properties; a headers-table entry of the
#: same name is dropped when the property is set (the property wins).
_DELIVERY_PROPERTY_HEADERS: Final = _PROPERTY_HEADERS | {"user-id"}
_REDELIVERED: Final = ("redelivered", "true")
_NOT_REDELIVERED: Final = ("redelivered", "false")
_PERSISTENT: Final = ("persistent", "true")


class HeaderError(ValueError):
    """A header value the broker would refuse; ``str(exc)`` is meant for the client."""


def first_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict where the first occurrence of a repeated header wins (STOMP 1.2)."""
    result: dict[str, str] = {}
    for name, value in headers:
        result.setdefault(name, value)
    return result


def _shortstr(name: str, value: str) -> str:
    if len(value.encode()) > MAX_SHORTSTR:
        raise HeaderError(f"header '{name}' is longer than {MAX_SHORTSTR} bytes")
    return value


def _int(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise HeaderError(f"header '{name}' must be an integer: got '{value[:40]}'")
    number = int(text)
    if not low <= number <= high:
        raise HeaderError(f"header '{name}' must be between {low} and {high}: got {number}")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise HeaderError(f"header '{name}' must be true or false: got '{value[:40]}'")


def properties_from_send(
    headers: Mapping[str, str], *, reply_to: str | None = None
) -> spec.Basic.Properties:
    """AMQP properties for a SEND whose (first-wins) headers are ``headers``.

    ``reply_to`` replaces the header's value (the relay rewrites ``/temp-queue/``).
    Raises :class:`HeaderError` for values the broker would refuse.
    """
    persistent = headers.get("persistent")
    delivery_mode = 1 if persistent is not None and persistent.strip().lower() == "false" else 2
    priority = headers.get("priority")
    expiration = headers.get("expiration")
    if expiration is not None:
        expiration = expiration.strip()
        if not expiration.isascii() or not expiration.isdigit():
            raise HeaderError(
                f"header 'expiration' must be a number of milliseconds: got '{expiration[:40]}'"
            )
    timestamp = headers.get("timestamp")
    stamp: datetime.datetime | None = None
    if timestamp is not None:
        seconds = _int("timestamp", timestamp, 0, 2**63 - 1)
        try:
            stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        except (OverflowError, ValueError, OSError) as exc:
            raise HeaderError(f"header 'timestamp' is out of range: got {seconds}") from exc
    if reply_to is None:
        reply_to = headers.get("reply-to")
    table: FieldTable = {}
    for name, value in headers.items():
        if name in _NOT_FORWARDED or name in _PROPERTY_HEADERS:
            continue
        if len(name.encode()) > MAX_FIELD_NAME:
            raise HeaderError(f"header name '{name[:40]}...' is longer than {MAX_FIELD_NAME} bytes")
        table[name] = value

    def short(name: str) -> str | None:
        value = headers.get(name)
        return None if value is None else _shortstr(name, value)

    return spec.Basic.Properties(
        content_type=short("content-type"),
        content_encoding=short("content-encoding"),
        headers=table or None,
        delivery_mode=delivery_mode,
        priority=None if priority is None else _int("priority", priority, 0, 255),
        correlation_id=short("correlation-id"),
        reply_to=None if reply_to is None else _shortstr("reply-to", reply_to),
        expiration=None if expiration is None else _shortstr("expiration", expiration),
        message_id=short("amqp-message-id"),
        timestamp=stamp,
        message_type=short("type"),
        app_id=short("app-id"),
    )


def _field_text(value: FieldValue) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime.datetime):
        return str(int(value.timestamp()))
    return None  # tables, arrays, decimals, void: no STOMP form


def _reply_to_header(value: str) -> str:
    if value.startswith(PREFIXES):
        return value
    return REPLY_QUEUE_PREFIX + value


def headers_from_delivery(
    properties: spec.Basic.Properties, redelivered: bool
) -> list[tuple[str, str]]:
    """MESSAGE headers (besides destination, subscription, message-id, ack) for a delivery."""
    out: list[tuple[str, str]] = [_REDELIVERED if redelivered else _NOT_REDELIVERED]
    p = properties
    if p.content_type is not None:
        out.append(("content-type", p.content_type))
    if p.content_encoding is not None:
        out.append(("content-encoding", p.content_encoding))
    if p.delivery_mode == 2:
        out.append(_PERSISTENT)
    if p.priority is not None:
        out.append(("priority", str(p.priority)))
    if p.correlation_id is not None:
        out.append(("correlation-id", p.correlation_id))
    if p.reply_to is not None:
        out.append(("reply-to", _reply_to_header(p.reply_to)))
    if p.expiration is not None:
        out.append(("expiration", p.expiration))
    if p.message_id is not None:
        out.append(("amqp-message-id", p.message_id))
    if p.timestamp is not None:
        out.append(("timestamp", str(int(p.timestamp.timestamp()))))
    if p.message_type is not None:
        out.append(("type", p.message_type))
    if p.user_id is not None:
        out.append(("user-id", p.user_id))
    if p.app_id is not None:
        out.append(("app-id", p.app_id))
    table = p.headers
    if table:
        seen: set[str] | None = None  # property headers set above, made only when needed
        for name, value in table.items():
            if name in _MESSAGE_RESERVED:
                continue
            if name in _DELIVERY_PROPERTY_HEADERS:
                if seen is None:
                    seen = {header for header, _ in out}
                if name in seen:
                    continue
            text = value if type(value) is str else _field_text(value)
            if text is not None:
                out.append((name, text))
    return out


# -- queue arguments ------------------------------------------------------------------------

_INT_ARGUMENTS: Final = frozenset(
    {
        "x-expires",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-message-ttl",
        "x-delivery-limit",
        "x-quorum-initial-group-size",
        "x-stream-max-segment-size-bytes",
    }
)
_STR_ARGUMENTS: Final = frozenset(
    {
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-max-age",
        "x-queue-type",
        "x-overflow",
        "x-queue-mode",
        "x-dead-letter-strategy",
        "x-queue-master-locator",
        "x-queue-leader-locator",
    }
)
_BOOL_ARGUMENTS: Final = frozenset({"x-single-active-consumer"})
_CHOICES: Final = {
    "x-queue-type": ("classic", "quorum", "stream"),
    "x-overflow": ("drop-head", "reject-publish", "reject-publish-dlx"),
    "x-queue-mode": ("default", "lazy"),
    "x-dead-letter-strategy": ("at-most-once", "at-least-once"),
}

#: Every ``x-`` header accepted as a queue argument on SUBSCRIBE (and SEND to /queue/).
QUEUE_ARGUMENT_HEADERS: Final = _INT_ARGUMENTS | _STR_ARGUMENTS | _BOOL_ARGUMENTS
#: ``x-`` headers a SUBSCRIBE may carry that are not queue arguments.
SUBSCRIBE_X_HEADERS: Final = frozenset({"x-queue-name", "x-stream-offset"})


def queue_arguments(headers: Mapping[str, str], *, strict: bool = False) -> dict[str, FieldValue]:
    """Queue-declare arguments from ``x-`` headers, typed as RabbitMQ expects them.

    Integers become AMQP integers, booleans booleans, the rest strings; ``x-queue-name`` is
    not an argument (the relay uses it as the queue's name). Raises :class:`HeaderError`.
    ``strict`` (a SUBSCRIBE, whose headers are not message headers): any other ``x-`` header
    is refused with :class:`~gateway.auth.errors.QueueArgumentRefused` (``Invalid header``)
    rather than ignored, so a misspelt argument never silently makes another queue. (On a SEND,
    other ``x-`` headers are the message's own and go to the broker with it.)
    """
    if strict:
        for name in headers:
            if (
                name.startswith("x-")
                and name not in QUEUE_ARGUMENT_HEADERS
                and name not in SUBSCRIBE_X_HEADERS
            ):
                raise QueueArgumentRefused(
                    f"unknown queue argument '{name[:60]}': a SUBSCRIBE takes "
                    f"{', '.join(sorted(QUEUE_ARGUMENT_HEADERS | SUBSCRIBE_X_HEADERS))}"
                )
    args: dict[str, FieldValue] = {}
    for name, value in headers.items():
        if name in _INT_ARGUMENTS:
            args[name] = _int(name, value, 0, 2**63 - 1)
        elif name in _STR_ARGUMENTS:
            text = _shortstr(name, value.strip())
            choices = _CHOICES.get(name)
            if choices is not None and text not in choices:
                raise HeaderError(
                    f"header '{name}' must be one of {', '.join(choices)}: got '{text[:40]}'"
                )
            args[name] = text
        elif name in _BOOL_ARGUMENTS:
            args[name] = _bool(name, value)
    return args
