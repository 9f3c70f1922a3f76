"""STOMP destinations, parsed the way RabbitMQ's STOMP plugin reads them.

``parse_destination`` turns the text of a ``destination`` (or ``reply-to``) header into one
of the typed values below, or raises :class:`DestinationError` whose text can go to the
client as is. ``destination_of_delivery`` is the reverse for broker deliveries: the
``destination`` header a MESSAGE carries, formatted exactly like the plugin does, so a
client of the gateway and a client of RabbitMQ's own STOMP plugin see the same value.

As in the plugin, ``%2F`` inside a name stands for ``/`` (the only escape it undoes), and
``/reply-queue/`` takes the rest of the text verbatim (reply queue names may hold slashes).
Stricter than the plugin, on purpose (names become routing keys and queue names):

* no control characters anywhere, no empty names or segments;
* queue, exchange and user names and routing keys at most 255 bytes (AMQP short strings);
* topic keys have no empty words (``a..b``, ``.a``); ``*`` and ``#`` are wildcards only as
  whole words and only where the caller allows them (SUBSCRIBE);
* ``/queue/amq.*`` is refused: RabbitMQ reserves those names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gateway.errors import ClientError, ErrorMessage

__all__ = [
    "TOPIC_EXCHANGE",
    "AmqQueue",
    "Destination",
    "DestinationError",
    "Exchange",
    "Queue",
    "ReplyQueue",
    "TempQueue",
    "Topic",
    "UserQueue",
    "destination_of_delivery",
    "escape_name",
    "parse_destination",
]

MAX_NAME_BYTES: Final = 255
#: The exchange of ``/topic/`` destinations.
TOPIC_EXCHANGE: Final = "amq.topic"
_CONTROL: Final = re.compile("[\x00-\x1f\x7f]")

TOPIC_PREFIX: Final = "/topic/"
QUEUE_PREFIX: Final = "/queue/"
AMQ_QUEUE_PREFIX: Final = "/amq/queue/"
EXCHANGE_PREFIX: Final = "/exchange/"
TEMP_QUEUE_PREFIX: Final = "/temp-queue/"
REPLY_QUEUE_PREFIX: Final = "/reply-queue/"
USER_PREFIX: Final = "/user/"

#: Every prefix a destination may start with, in the order error messages list them.
PREFIXES: Final = (
    TOPIC_PREFIX,
    QUEUE_PREFIX,
    AMQ_QUEUE_PREFIX,
    EXCHANGE_PREFIX,
    TEMP_QUEUE_PREFIX,
    REPLY_QUEUE_PREFIX,
    USER_PREFIX,
)


class DestinationError(ClientError, ValueError):
    """A destination the gateway cannot use: ``Invalid destination`` (``Unknown destination``
    for a prefix the gateway does not know, as RabbitMQ's plugin says); ``detail`` says why."""

    reason = "destination"

    def __init__(
        self, detail: str, *, message: ErrorMessage = ErrorMessage.INVALID_DESTINATION
    ) -> None:
        super().__init__(message, detail)


@dataclass(frozen=True, slots=True)
class Topic:
    """``/topic/<key>``: ``amq.topic`` with routing key (or binding pattern) ``key``."""

    key: str

    def __str__(self) -> str:
        return TOPIC_PREFIX + _escape_slash(self.key)


@dataclass(frozen=True, slots=True)
class Queue:
    """``/queue/<name>``: a durable queue the gateway declares on first use."""

    name: str

    def __str__(self) -> str:
        return QUEUE_PREFIX + _escape_slash(self.name)


@dataclass(frozen=True, slots=True)
class AmqQueue:
    """``/amq/queue/<name>``: an existing queue; using a missing one is an error."""

    name: str

    def __str__(self) -> str:
        return AMQ_QUEUE_PREFIX + _escape_slash(self.name)


@dataclass(frozen=True, slots=True)
class Exchange:
    """``/exchange/<name>[/<key>]``: any exchange; ``key`` None means the empty key."""

    name: str
    key: str | None = None

    def __str__(self) -> str:
        text = EXCHANGE_PREFIX + _escape_slash(self.name)
        return text if self.key is None else text + "/" + _escape_slash(self.key)


@dataclass(frozen=True, slots=True)
class TempQueue:
    """``/temp-queue/<name>``: only meaningful in a ``reply-to`` header."""

    name: str

    def __str__(self) -> str:
        return TEMP_QUEUE_PREFIX + _escape_slash(self.name)


@dataclass(frozen=True, slots=True)
class ReplyQueue:
    """``/reply-queue/<name>``: the broker-side name of someone's temp queue."""

    name: str

    def __str__(self) -> str:
        return REPLY_QUEUE_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class UserQueue:
    """``/user/queue/<name>`` (``user`` None: the session's own user) or
    ``/user/<user>/queue/<name>`` (send to every live session of ``user``)."""

    name: str
    user: str | None = None

    def __str__(self) -> str:
        if self.user is None:
            return f"{USER_PREFIX}queue/{_escape_slash(self.name)}"
        return f"{USER_PREFIX}{_escape_slash(self.user)}/queue/{_escape_slash(self.name)}"


Destination = Topic | Queue | AmqQueue | Exchange | TempQueue | ReplyQueue | UserQueue


def _shown(text: str) -> str:
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= 120 else text[:117] + "..."


def _escape_slash(name: str) -> str:
    return name.replace("/", "%2F")


def _unescape(segment: str) -> str:
    # Like the plugin: %2F (upper case only) is the one escape undone.
    return segment.replace("%2F", "/")


def _check_name(kind: str, name: str, text: str) -> str:
    if not name:
        raise DestinationError(f"{kind} must not be empty in destination '{_shown(text)}'")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise DestinationError(
            f"{kind} is longer than {MAX_NAME_BYTES} bytes in destination '{_shown(text)}'"
        )
    return name


def _single_segment(kind: str, rest: str, text: str) -> str:
    if "/" in rest:
        raise DestinationError(
            f"{kind} must not contain '/' (write %2F) in destination '{_shown(text)}'"
        )
    return _check_name(kind, _unescape(rest), text)


def _check_topic_key(key: str, text: str, for_subscribe: bool) -> str:
    _check_name("topic key", key, text)
    for word in key.split("."):
        if not word:
            raise DestinationError(
                f"topic key must not have empty words (check the dots) in "
                f"destination '{_shown(text)}'"
            )
        if word in ("*", "#"):
            if not for_subscribe:
                raise DestinationError(
                    f"wildcards * and # are only allowed when subscribing, not in "
                    f"destination '{_shown(text)}'"
                )
        elif "*" in word or "#" in word:
            raise DestinationError(
                f"wildcards * and # must be whole words between dots in "
                f"destination '{_shown(text)}'"
            )
    return key


def parse_destination(text: str, *, for_subscribe: bool = False) -> Destination:
    """Parse a STOMP destination; raise :class:`DestinationError` with a clear message.

    ``for_subscribe`` allows the wildcards ``*`` and ``#`` in topic keys (whole words).
    """
    if not text:
        raise DestinationError("destination must not be empty")
    if _CONTROL.search(text) is not None:
        raise DestinationError(
            f"destination must not contain control characters: got '{_shown(text)}'"
        )
    if text.startswith(TOPIC_PREFIX):
        rest = text[len(TOPIC_PREFIX) :]
        key = _single_segment("topic key", rest, text)
        return Topic(_check_topic_key(key, text, for_subscribe))
    if text.startswith(QUEUE_PREFIX):
        name = _single_segment("queue name", text[len(QUEUE_PREFIX) :], text)
        if name.startswith("amq."):
            raise DestinationError(
                f"queue names starting with 'amq.' are reserved by RabbitMQ "
                f"(use /amq/queue/ for an existing one): got '{_shown(text)}'"
            )
        return Queue(name)
    if text.startswith(AMQ_QUEUE_PREFIX):
        return AmqQueue(_single_segment("queue name", text[len(AMQ_QUEUE_PREFIX) :], text))
    if text.startswith(EXCHANGE_PREFIX):
        parts = text[len(EXCHANGE_PREFIX) :].split("/")
        if len(parts) > 2:
            raise DestinationError(
                f"destination must be /exchange/<name> or /exchange/<name>/<routing key> "
                f"(write %2F for '/' in a name): got '{_shown(text)}'"
            )
        name = _check_name("exchange name", _unescape(parts[0]), text)
        if len(parts) == 1:
            return Exchange(name, None)
        key = _check_name("routing key", _unescape(parts[1]), text)
        return Exchange(name, key)
    if text.startswith(TEMP_QUEUE_PREFIX):
        return TempQueue(_single_segment("temp queue name", text[len(TEMP_QUEUE_PREFIX) :], text))
    if text.startswith(REPLY_QUEUE_PREFIX):
        return ReplyQueue(_check_name("reply queue name", text[len(REPLY_QUEUE_PREFIX) :], text))
    if text.startswith(USER_PREFIX):
        parts = text[len(USER_PREFIX) :].split("/")
        if len(parts) == 2 and parts[0] == "queue":
            return UserQueue(_check_name("queue name", _unescape(parts[1]), text), None)
        if len(parts) == 3 and parts[1] == "queue":
            user = _check_name("user name", _unescape(parts[0]), text)
            return UserQueue(_check_name("queue name", _unescape(parts[2]), text), user)
        raise DestinationError(
            f"destination must be /user/queue/<name> or /user/<user>/queue/<name>: "
            f"got '{_shown(text)}'"
        )
    raise DestinationError(
        "destination must start with /topic/, /queue/, /amq/queue/, /exchange/, "
        f"/temp-queue/, /reply-queue/ or /user/: got '{_shown(text)}'",
        message=ErrorMessage.UNKNOWN_DESTINATION,
    )


def escape_name(name: str) -> str:
    """Escape a name for a MESSAGE ``destination`` header, byte for byte like the plugin:
    ``/`` → ``%2F``, ``%`` → ``%25``, bytes below 32 or above 127 → ``%XX``."""
    if name.isascii() and name.isprintable() and "/" not in name and "%" not in name:
        return name
    out: list[str] = []
    for byte in name.encode():
        if byte == 0x2F:
            out.append("%2F")
        elif byte == 0x25:
            out.append("%25")
        elif byte < 32 or byte > 127:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def destination_of_delivery(
    exchange: str, routing_key: str, topic_exchange: str = TOPIC_EXCHANGE
) -> str:
    """The ``destination`` of a MESSAGE for a delivery from ``exchange`` with ``routing_key``,
    as RabbitMQ's STOMP plugin prints it (``topic_exchange``: the one ``/topic/`` names)."""
    if exchange == "":
        return QUEUE_PREFIX + escape_name(routing_key)
    if exchange == topic_exchange:
        return TOPIC_PREFIX + escape_name(routing_key)
    if routing_key == "":
        return EXCHANGE_PREFIX + escape_name(exchange)
    return EXCHANGE_PREFIX + escape_name(exchange) + "/" + escape_name(routing_key)
