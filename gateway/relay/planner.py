"""What a SUBSCRIBE or a SEND becomes on the broker: the relay's rules, without I/O.

Theory of operation. The relay (:mod:`.relay`) takes a client's request in three steps:
the planner reads it and says what to do, :mod:`.topology` does the declares, checks and
binds the plan asks for, and the relay hands what results to the node fan-out or a consumer
of its own. Everything here is a pure function of its arguments (the parsed destination,
the frame's headers, the ack mode, the client's user and :class:`RelaySettings`) that
returns a frozen dataclass or raises the error the client gets; no asyncio, no broker, no
clock, no randomness (a private queue's random suffix is drawn by the topology each time it
declares it, see :attr:`QueueSpec.unique`).

A SUBSCRIBE is checked in two steps, because the relay's own checks (is the broker there,
is the subscription id free) sit between them and the order of the errors a client sees
stays what it always was:

1. :func:`parse_subscribe`: the ack mode, the destination, ``/temp-queue/`` refused, ids
   starting with ``/temp-queue/`` reserved (the relay uses them for reply queues);
2. :func:`plan_subscribe`: a :class:`FanoutPlan` (``ack:auto`` topics that are not durable,
   and ``/user/queue/`` with ``ack:auto``: the node queue carries them) or a
   :class:`ConsumerPlan` (everything else: which queue to declare or check, with which
   arguments, the exchange to check and the binding to make, the prefetch, whether it is a
   durable subscription, the destination MESSAGE frames show).

A SEND likewise: :func:`parse_publish` first; then, once the relay knows it can publish,
:func:`reply_temp_queue` says whether a ``reply-to`` names a temp queue (the relay makes it
and rewrites the header) and :func:`plan_publish` returns a :class:`PublishPlan`: exchange,
routing key, AMQP properties, ``mandatory``, and the queue to declare or the exchange to
check first.

The rules, as RabbitMQ's STOMP plugin has them where it has them (see :mod:`gateway.relay`
for the table of destinations):

* ``ack`` is ``auto``, ``client`` or ``client-individual``; ``prefetch-count`` is 0-65535
  (default ``default_prefetch``);
* ``/exchange/amq.topic/<key>`` is ``/topic/<key>``;
* a SUBSCRIBE to ``/topic/`` or ``/exchange/`` with ``durable:true`` (or
  ``persistent:true``) and ``auto-delete:false`` is a durable subscription: a durable queue
  named by ``x-queue-name`` or :func:`durable_queue_name` (which names its owner), of type
  ``durable_queue_type`` unless ``x-queue-type`` says otherwise; an UNSUBSCRIBE carrying
  ``durable:true`` deletes it (:func:`unsubscribe_deletes_queue`);
* ``/queue/<name>``: a durable queue unless ``durable:false``, auto-delete with
  ``auto-delete:true``; with no ``x-`` arguments an existing queue is used as it is
  (``lenient``), with some the broker's refusal is the client's error;
* any other consumer gets a private exclusive queue (``x-queue-name`` or
  ``stompgate.sub.<node id>.<random>``) bound to the exchange; a ``/topic/`` SUBSCRIBE with
  ``x-queue-name`` gets one whatever its ack mode (not the node fan-out), and a queue of that
  name that exists already is used as it is when the SUBSCRIBE gives no ``x-`` arguments (so a
  client of RabbitMQ's plugin, or a native AMQP one, and a gateway client can share it);
* ``x-queue-name`` is 1-255 bytes and not ``amq.*``; ``x-`` queue arguments are typed by
  :func:`~gateway.relay.headers.queue_arguments`, and a SUBSCRIBE that gets a queue of its
  own may carry no other ``x-`` header than those, ``x-queue-name`` and ``x-stream-offset``;
* ``x-stream-offset`` (a consumer of a stream starts there) is read by
  :func:`stream_offset`, as RabbitMQ's plugin reads it;
* ``/user/queue/<x>`` needs an authenticated user and means that user's own queue; a
  SUBSCRIBE to someone else's (``/user/<name>/queue/<x>``) is refused, a SEND to it goes
  to every live session of ``<name>``;
* exchanges whose names start with ``amq.`` always exist: they are never checked.

Authority. Each plan lists what it needs the right to do besides its frame's destination
(:class:`~gateway.auth.authority.Authority`): the queues it uses by name and why
(``x-queue-name``; the queue a ``/queue/``, ``/amq/queue/`` or ``/reply-queue/`` destination
names), the destinations its queue's dead letters go to (``x-dead-letter-exchange`` and
``-routing-key`` as a SEND would name them), and the queue arguments it declares. The relay
has the gatekeeper authorize it, in one call, before the plan runs. Node-private, durable
(named by :func:`durable_queue_name`) and server-named queues are not listed: no client can
name them, and a durable subscription's queue is its owner's by construction.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from typing import Final

from pamqp import commands as spec
from pamqp.common import FieldValue

from gateway.auth.authority import NO_AUTHORITY, Authority, QueueRole, QueueUse
from gateway.auth.errors import QueueArgumentRefused
from gateway.auth.queue_policy import durable_queue_name
from gateway.errors import ErrorMessage

from .destinations import (
    TEMP_QUEUE_PREFIX,
    TOPIC_EXCHANGE,
    AmqQueue,
    Destination,
    DestinationError,
    Exchange,
    Queue,
    ReplyQueue,
    TempQueue,
    Topic,
    UserQueue,
    parse_destination,
)
from .errors import BrokerRuleError, PublishError, SubscribeError
from .headers import HeaderError, properties_from_send, queue_arguments
from .settings import RelaySettings

__all__ = [
    "ACK_MODES",
    "MAX_KEY_BYTES",
    "Binding",
    "ConsumerPlan",
    "FanoutPlan",
    "PublishPlan",
    "QueueSpec",
    "SubscribePlan",
    "authority",
    "durable_queue_name",
    "has_durable_header",
    "parse_publish",
    "parse_subscribe",
    "plan_publish",
    "plan_subscribe",
    "reply_temp_queue",
    "stream_offset",
    "temp_queue_plan",
    "unsubscribe_deletes_queue",
    "user_routing_key",
    "with_reply_to",
]

ACK_MODES: Final = ("auto", "client", "client-individual")
MAX_KEY_BYTES: Final = 255
MAX_PREFETCH: Final = 65535
PRIVATE_QUEUE_PREFIX: Final = "stompgate.sub."
#: The ``basic.consume`` argument that says where a stream consumer starts.
STREAM_OFFSET: Final = "x-stream-offset"
_STREAM_POSITIONS: Final = ("first", "last", "next")
_MAX_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z, the last one datetime takes


# -- plans ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue to declare (or, ``passive``, only to find).

    ``name`` ``""`` lets the broker name it. ``unique``: ``name`` is a prefix, and each
    declare appends ``.<random>`` (a private queue, new after every reconnect). ``lenient``:
    if the queue exists with other arguments, use it as it is instead of failing.
    """

    name: str
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    arguments: Mapping[str, FieldValue] = field(default_factory=dict)
    lenient: bool = False
    unique: bool = False
    passive: bool = False


@dataclass(frozen=True, slots=True)
class Binding:
    """Bind the subscription's queue to ``exchange`` with routing key (or pattern) ``key``."""

    exchange: str
    key: str


@dataclass(frozen=True, slots=True)
class FanoutPlan:
    """A subscription the node's fan-out queue serves: bound (reference-counted) to
    ``exchange`` with ``key``; MESSAGE frames show ``shown_destination`` if set."""

    subscription_id: str
    destination: str
    exchange: str
    key: str
    shown_destination: str | None = None
    authority: Authority = NO_AUTHORITY


@dataclass(frozen=True, slots=True)
class ConsumerPlan:
    """A subscription with a consumer of its own.

    To get its queue: check ``check_exchange`` (if set), declare (or find) ``queue``, bind
    it with ``binding`` (if set; a queue that is not ``durable`` is deleted again if the
    bind fails). Then consume it with ``prefetch``. ``durable``: a durable subscription (an
    UNSUBSCRIBE with ``durable:true`` deletes its queue). ``shown_destination``: the
    ``destination`` of its MESSAGE frames (None: the one the delivery came through).
    ``consumer_arguments``: the ``basic.consume`` arguments (``x-stream-offset``).
    ``authority``: what it needs the right to do besides its destination.
    """

    subscription_id: str
    destination: str
    ack: str
    prefetch: int
    queue: QueueSpec
    check_exchange: str | None = None
    binding: Binding | None = None
    durable: bool = False
    shown_destination: str | None = None
    consumer_arguments: Mapping[str, FieldValue] = field(default_factory=dict)
    authority: Authority = NO_AUTHORITY


SubscribePlan = FanoutPlan | ConsumerPlan


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """A SEND: declare ``declare`` and check ``check_exchange`` first (if set), then
    publish to ``exchange`` with ``routing_key`` and ``properties``. A ``mandatory`` publish
    that the broker returns fails with ``unroutable`` as its text. ``authority``: what it
    needs the right to do besides its destination."""

    exchange: str
    routing_key: str
    properties: spec.Basic.Properties
    mandatory: bool = False
    unroutable: str = ""
    declare: QueueSpec | None = None
    check_exchange: str | None = None
    authority: Authority = NO_AUTHORITY


# -- names ----------------------------------------------------------------------------------


def user_routing_key(user: str, name: str) -> str:
    """Routing key on the user exchange for ``/user/<user>/queue/<name>``."""
    key = urllib.parse.quote(user, safe="") + "/" + name
    if len(key.encode()) > MAX_KEY_BYTES:
        raise DestinationError(
            f"user name and queue name are too long together (over {MAX_KEY_BYTES} bytes)"
        )
    return key


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _is_false(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "false"


def has_durable_header(headers: Mapping[str, str]) -> bool:
    """``durable:true`` or ``persistent:true``, as RabbitMQ's plugin reads it."""
    return _is_true(headers.get("durable")) or _is_true(headers.get("persistent"))


def unsubscribe_deletes_queue(durable: bool, headers: Mapping[str, str] | None) -> bool:
    """Does an UNSUBSCRIBE with ``headers`` delete the queue of a subscription (a durable
    one if ``durable``)? Only a durable subscription's, and only with ``durable:true``."""
    return durable and headers is not None and has_durable_header(headers)


def _exchange_to_check(name: str) -> str | None:
    """``amq.*`` exchanges always exist (RabbitMQ makes them and refuses to delete them)."""
    return None if name.startswith("amq.") else name


def _refuse_temp_queue(dest: Destination) -> None:
    if isinstance(dest, TempQueue):
        raise DestinationError("/temp-queue/ destinations can only be used in a reply-to header")


# -- SUBSCRIBE ------------------------------------------------------------------------------


def parse_subscribe(subscription_id: str, destination: str, ack: str) -> Destination:
    """The checks that need no headers: ack mode, destination, reserved names. Raises
    :class:`SubscribeError` or :class:`DestinationError`."""
    if ack not in ACK_MODES:
        raise SubscribeError(
            f"ack must be auto, client or client-individual: got '{ack}'",
            message=ErrorMessage.INVALID_HEADER,
        )
    dest = parse_destination(destination, for_subscribe=True)
    _refuse_temp_queue(dest)
    if subscription_id.startswith(TEMP_QUEUE_PREFIX):
        raise SubscribeError(
            "subscription ids starting with /temp-queue/ are reserved",
            message=ErrorMessage.INVALID_ID,
        )
    return dest


def plan_subscribe(
    settings: RelaySettings,
    *,
    subscription_id: str,
    destination: str,
    dest: Destination,
    ack: str,
    headers: Mapping[str, str],
    user: str | None,
) -> SubscribePlan:
    """The plan of a SUBSCRIBE that passed :func:`parse_subscribe` (``dest`` is what it
    returned for ``destination``), by ``user`` (None: anonymous). Raises
    :class:`SubscribeError` (bad headers, no user) or :class:`DestinationError`."""
    if isinstance(dest, Exchange) and dest.name == settings.topic_exchange:
        dest = Topic(dest.key or "")
    durable = (
        isinstance(dest, Topic | Exchange)
        and has_durable_header(headers)
        and _is_false(headers.get("auto-delete"))
    )
    shown: str | None = None
    if isinstance(dest, UserQueue):
        if dest.user is not None:
            raise DestinationError(
                "cannot subscribe to another user's queue: subscribe to "
                f"/user/queue/{dest.name} to get your own"
            )
        if user is None:
            raise SubscribeError("/user/ destinations need an authenticated user")
        key = user_routing_key(user, dest.name)
        shown = str(UserQueue(dest.name))
        if ack == "auto":
            return FanoutPlan(subscription_id, destination, settings.user_exchange, key, shown)
    elif (
        isinstance(dest, Topic) and ack == "auto" and not durable and "x-queue-name" not in headers
    ):
        return FanoutPlan(subscription_id, destination, settings.topic_exchange, dest.key)
    prefetch = _prefetch(headers, settings.default_prefetch)
    offset = stream_offset(headers.get("x-stream-offset"))
    consumer_arguments: dict[str, FieldValue] = {} if offset is None else {STREAM_OFFSET: offset}
    try:
        arguments = queue_arguments(headers, strict=True)
    except HeaderError as exc:
        raise SubscribeError(str(exc), message=ErrorMessage.INVALID_HEADER) from exc
    queue_name = _queue_name(headers)

    def consumer(
        queue: QueueSpec,
        check: str | None = None,
        binding: Binding | None = None,
        uses: tuple[QueueUse, ...] = (),
    ) -> ConsumerPlan:
        declared = {} if queue.passive else arguments
        return ConsumerPlan(
            subscription_id,
            destination,
            ack,
            prefetch,
            queue,
            check_exchange=check,
            binding=binding,
            durable=durable,
            shown_destination=shown,
            consumer_arguments=consumer_arguments,
            authority=authority(uses, declared),
        )

    if isinstance(dest, Queue):
        spec = QueueSpec(
            dest.name,
            durable=not _is_false(headers.get("durable")),
            auto_delete=_is_true(headers.get("auto-delete")),
            arguments=arguments,
            lenient=not arguments,
        )
        return consumer(spec, uses=(QueueUse(dest.name, QueueRole.DESTINATION),))
    if isinstance(dest, AmqQueue | ReplyQueue):
        spec = QueueSpec(dest.name, passive=True)
        return consumer(spec, uses=(QueueUse(dest.name, QueueRole.DESTINATION),))
    if isinstance(dest, Topic):
        binding = Binding(settings.topic_exchange, dest.key)
    elif isinstance(dest, Exchange):
        binding = Binding(dest.name, dest.key or "")
    else:
        assert isinstance(dest, UserQueue)
        assert user is not None
        binding = Binding(settings.user_exchange, user_routing_key(user, dest.name))
    check = _exchange_to_check(binding.exchange)
    named = () if queue_name is None else (QueueUse(queue_name, QueueRole.NAMED),)
    if durable:
        durable_arguments = dict(arguments)
        durable_arguments.setdefault("x-queue-type", settings.durable_queue_type)
        name = queue_name or durable_queue_name(
            user, subscription_id, destination, settings.deployment
        )
        queue = QueueSpec(name, arguments=durable_arguments, lenient=not arguments)
        return consumer(queue, check, binding, named)
    private = QueueSpec(
        queue_name or f"{settings.deployment}.sub.{settings.node_id}",
        durable=False,
        auto_delete=True,
        exclusive=True,
        arguments=arguments,
        lenient=queue_name is not None and not arguments,
        unique=queue_name is None,
    )
    return consumer(private, check, binding, named)


def authority(uses: tuple[QueueUse, ...], arguments: Mapping[str, FieldValue]) -> Authority:
    """What a plan that uses queues ``uses`` and declares a queue with (typed, client-given)
    ``arguments`` needs the right to do: those queues, its dead-letter targets as SEND
    destinations (a dead letter to the default exchange reaches queue ``<key>``, which is
    used too), the arguments. Raises :class:`QueueArgumentRefused` for a dead-letter routing
    key without an exchange."""
    if not uses and not arguments:
        return NO_AUTHORITY
    exchange = arguments.get("x-dead-letter-exchange")
    key = arguments.get("x-dead-letter-routing-key")
    targets: tuple[str, ...] = ()
    if exchange is None:
        if key is not None:
            raise QueueArgumentRefused(
                "x-dead-letter-routing-key needs x-dead-letter-exchange (use '' for the "
                "default exchange, which delivers to the queue named by the key)"
            )
    elif key is not None:
        exchange, key = str(exchange), str(key)
        if exchange == "":
            targets = (str(Queue(key)),)
            uses = (*uses, QueueUse(key, QueueRole.DESTINATION))
        elif exchange == TOPIC_EXCHANGE:
            targets = (str(Topic(key)),)
        else:
            targets = (str(Exchange(exchange, key)),)
    typed = {name: value for name, value in arguments.items() if isinstance(value, int | str)}
    return Authority(
        queues=uses,
        dead_letters=targets,
        dead_letter_unbounded=exchange is not None and key is None,
        arguments=typed,
    )


def _prefetch(headers: Mapping[str, str], default: int) -> int:
    text = headers.get("prefetch-count")
    if text is None:
        return default
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or int(stripped) > MAX_PREFETCH:
        raise SubscribeError(
            f"prefetch-count must be an integer 0-{MAX_PREFETCH}: got '{text[:40]}'",
            message=ErrorMessage.INVALID_HEADER,
        )
    return int(stripped)


def stream_offset(text: str | None) -> FieldValue | None:
    """The ``x-stream-offset`` consumer argument for the header's value, as RabbitMQ's STOMP
    plugin makes it: ``first``, ``last`` and ``next`` as they are, ``offset:<n>`` an integer
    (the position in the stream), ``timestamp:<seconds since the epoch>`` a timestamp; ``=``
    is taken for ``:`` too. None without a header. Anything else raises
    :class:`BrokerRuleError` (``Invalid header``): the broker would answer it with a
    connection error."""
    if text is None:
        return None
    value = text.strip()
    if value in _STREAM_POSITIONS:
        return value
    for kind in ("offset", "timestamp"):
        if value.startswith(kind) and value[len(kind) : len(kind) + 1] in (":", "="):
            number = value[len(kind) + 1 :]
            digits = number.removeprefix("-")
            if not (digits.isascii() and digits.isdigit() and len(digits) <= 19):
                break
            position = int(number)
            if kind == "offset" and -(2**63) <= position < 2**63:
                return position
            if kind == "timestamp" and 0 <= position <= _MAX_TIMESTAMP:
                return datetime.datetime.fromtimestamp(position, tz=datetime.UTC)
            break
    raise BrokerRuleError(
        ErrorMessage.INVALID_HEADER,
        "x-stream-offset must be first, last, next, offset:<position> or "
        f"timestamp:<seconds since the epoch>: got '{text[:40]}'",
        reason="stream_offset",
    )


def _queue_name(headers: Mapping[str, str]) -> str | None:
    name = headers.get("x-queue-name")
    if name is None:
        return None
    name = name.strip()
    if not name or len(name.encode()) > MAX_KEY_BYTES or name.startswith("amq."):
        raise SubscribeError(
            "x-queue-name must be 1-255 bytes and must not start with 'amq.'",
            message=ErrorMessage.INVALID_HEADER,
        )
    return name


def temp_queue_plan(settings: RelaySettings, name: str) -> ConsumerPlan:
    """The subscription behind ``/temp-queue/<name>`` in a SEND's ``reply-to``: a queue the
    broker names, exclusive and auto-delete, consumed with ``ack:auto`` and delivered as
    subscription ``/temp-queue/<name>``."""
    subscription_id = TEMP_QUEUE_PREFIX + name
    return ConsumerPlan(
        subscription_id,
        subscription_id,
        "auto",
        settings.default_prefetch,
        QueueSpec("", durable=False, auto_delete=True, exclusive=True),
    )


# -- SEND -----------------------------------------------------------------------------------


def parse_publish(destination: str) -> Destination:
    """A SEND's destination; raises :class:`DestinationError`."""
    dest = parse_destination(destination)
    _refuse_temp_queue(dest)
    return dest


def reply_temp_queue(reply_to: str | None) -> str | None:
    """The temp queue name if ``reply-to`` is ``/temp-queue/<name>`` (else None); raises
    :class:`DestinationError` for a bad one."""
    if reply_to is None or not reply_to.startswith(TEMP_QUEUE_PREFIX):
        return None
    temp = parse_destination(reply_to)
    assert isinstance(temp, TempQueue)
    return temp.name


def plan_publish(
    settings: RelaySettings,
    dest: Destination,
    headers: Mapping[str, str],
    *,
    user: str | None,
    reply_to: str | None,
    declared: Set[str],
) -> PublishPlan:
    """The plan of a SEND to ``dest`` (from :func:`parse_publish`) with first-wins
    ``headers``, by ``user``; ``reply_to`` is the ``reply-to`` to send (rewritten if it was
    a temp queue). ``declared``: the queues SENDs declared on this connection already; a SEND
    to one of those declares nothing (and does not read its ``x-`` headers again). Its
    ``authority`` lists the queue a ``/queue/``, ``/amq/queue/`` or ``/reply-queue/``
    destination reaches and what a declare needs (:func:`authority`). Raises
    :class:`PublishError` (bad header values), :class:`QueueArgumentRefused` or
    :class:`DestinationError`."""
    try:
        properties = properties_from_send(headers, reply_to=reply_to)
        match dest:
            case Topic(key):
                return PublishPlan(settings.topic_exchange, key, properties)
            case Queue(name):
                uses = (QueueUse(name, QueueRole.DESTINATION),)
                if name in declared:
                    return PublishPlan("", name, properties, authority=Authority(uses))
                arguments = queue_arguments(headers)
                declare = QueueSpec(name, arguments=arguments, lenient=not arguments)
                needs = authority(uses, arguments)
                return PublishPlan("", name, properties, declare=declare, authority=needs)
            case AmqQueue(name):
                return PublishPlan(
                    "",
                    name,
                    properties,
                    True,
                    f"no such queue '{name}'",
                    authority=Authority((QueueUse(name, QueueRole.DESTINATION),)),
                )
            case Exchange(name, key):
                check = _exchange_to_check(name)
                return PublishPlan(name, key or "", properties, check_exchange=check)
            case ReplyQueue(name):
                needs = Authority((QueueUse(name, QueueRole.REPLY),))
                return PublishPlan("", name, properties, authority=needs)
            case UserQueue(name, to):
                target = to if to is not None else user
                if target is None:
                    raise DestinationError(
                        "/user/queue/ needs an authenticated user; "
                        "send to /user/<name>/queue/<queue> instead"
                    )
                key = user_routing_key(target, name)
                return PublishPlan(settings.user_exchange, key, properties)
    except HeaderError as exc:
        raise PublishError(str(exc), message=ErrorMessage.INVALID_HEADER) from exc
    raise DestinationError(f"cannot send to {dest}")  # pragma: no cover - TempQueue


def with_reply_to(plan: PublishPlan, headers: Mapping[str, str], reply_to: str) -> PublishPlan:
    """``plan`` (of a SEND with ``headers``) with its ``reply-to`` rewritten to ``reply_to``
    (the temp queue the relay made once the plan was authorized)."""
    try:
        properties = properties_from_send(headers, reply_to=reply_to)
    except HeaderError as exc:
        raise PublishError(str(exc)) from exc
    return replace(plan, properties=properties)
