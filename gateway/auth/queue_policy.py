"""Whose queue is it, which names are reserved, which queue arguments are allowed: pure rules.

Theory of operation. A queue name is authority: whoever may consume a queue reads what it
collects, and whoever may bind it or name it as a dead-letter target writes into it. So a
queue name a client can set is authorized like a destination (see
:mod:`gateway.auth.authority` for what a plan lists, :class:`~gateway.auth.gatekeeper.Gatekeeper`
for the order of the checks). The rules here need no I/O:

* **Ownership is decided by the name alone.** Every user has a namespace,
  ``stompgate.u.<user key>.`` (``<deployment>.u.`` in general: every name here starts with
  the deployment's name, ``stompgate`` by default; :func:`user_namespace`; the key is the
  user name when it is made of ``A-Z a-z 0-9 _ @ -`` and dots, with each dot written ``:``,
  else ``::`` and a hash), for queues they name with ``x-queue-name``. A durable
  subscription's own queue is
  ``stompgate.dsub.<owner tag><digest>`` (:func:`durable_queue_name`): the first 16 hex digits
  after the prefix are a hash of the owner's name (:func:`owner_tag`), so the owner is found
  on every attach from the name, without trusting the client and without a lookup that could
  disagree with the broker. (Durable subscriptions are also *recorded* in Redis, by the relay,
  but only to list them and to count them against a cap: a lost record never opens a queue to
  someone else.)
* **Reserved names**: ``<deployment>.*`` (the gateway's own: node fan-out queues, private and
  durable subscription queues, user namespaces, the workers' ``<deployment>.persist``),
  ``stompgate.*`` whatever the deployment (the registries of ``chatstate.deployment``) and
  ``amq.*`` (RabbitMQ's: server-named temp queues), plus any an operator adds
  (``STOMPGATE_RESERVED_QUEUES``, e.g. the queues of a team's workers). A client reaches a
  reserved queue only in its own namespace or through an ACL ``queue`` rule.
* **Queue arguments** a client may declare are typed by the relay (an allow-list, see
  :func:`gateway.relay.headers.queue_arguments`) and bounded here (:class:`QueuePolicy`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from chatstate.deployment import DEFAULT_DEPLOYMENT, check_deployment
from gateway.auth import _env
from gateway.auth.authority import QueueRole, QueueUse

__all__ = [
    "DEFAULT_ARGUMENT_LIMITS",
    "DURABLE_QUEUE_PREFIX",
    "QUEUE_TYPES",
    "RESERVED_QUEUES",
    "USER_QUEUE_PREFIX",
    "QueuePolicy",
    "durable_prefix",
    "durable_queue_name",
    "owner_tag",
    "owns",
    "shown_name",
    "user_namespace",
    "user_prefix",
]

#: Queues of durable subscriptions: this prefix, the owner's tag, a digest (40 characters);
#: the default deployment's (:func:`durable_prefix` in general).
DURABLE_QUEUE_PREFIX: Final = "stompgate.dsub."
#: Users' namespaces for queues they name: this prefix, the user key, a dot; the default
#: deployment's (:func:`user_prefix` in general).
USER_QUEUE_PREFIX: Final = "stompgate.u."
#: Queues the broker names (temp queues): the only ones a SEND to ``/reply-queue/`` reaches.
SERVER_NAMED_PREFIX: Final = "amq.gen-"
#: Reserved whatever the configuration says.
RESERVED_QUEUES: Final = ("stompgate.*", "amq.*")
#: The queue types a client may ask for unless an operator narrows them.
QUEUE_TYPES: Final = ("classic", "quorum", "stream")

_OWNER_TAG_LENGTH: Final = 16
_DIGEST_LENGTH: Final = 24
_READABLE_USER: Final = re.compile(r"[A-Za-z0-9_@-]+(?:\.[A-Za-z0-9_@-]+)*")
_MAX_READABLE: Final = 64
_MAX_UINT32: Final = 4_294_967_295

#: Bounds (inclusive) of the integer queue arguments, unless an operator changes them
#: (``STOMPGATE_QUEUE_ARGUMENT_LIMITS``). TTLs are RabbitMQ's own limits; lengths and the rest
#: bound what one client can make the broker hold or do.
DEFAULT_ARGUMENT_LIMITS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "x-message-ttl": (0, _MAX_UINT32),
        "x-expires": (1, _MAX_UINT32),
        "x-max-length": (0, 1_000_000),
        "x-max-length-bytes": (0, 1024 * 1024 * 1024),
        "x-max-priority": (1, 10),
        "x-delivery-limit": (0, 10_000),
        "x-quorum-initial-group-size": (1, 9),
        "x-stream-max-segment-size-bytes": (1, 500_000_000),
    }
)


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def user_key(user: str) -> str:
    """The user's part of queue names: readable and injective (``a.b@c.d`` → ``a:b@c:d``;
    anything else, or longer than 64 characters, ``::`` and 32 hex digits of a hash, which no
    readable key can look like: those never hold ``::``)."""
    if len(user) <= _MAX_READABLE and _READABLE_USER.fullmatch(user):
        return user.replace(".", ":")
    return "::" + _hex("stompgate-user\x00" + user)[:32]


def user_prefix(deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """Where users' namespaces start: ``<deployment>.u.``."""
    return f"{deployment}.u."


def durable_prefix(deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """Where durable subscriptions' queues start: ``<deployment>.dsub.``."""
    return f"{deployment}.dsub."


def user_namespace(user: str | None, deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """The prefix of every queue ``user`` owns by name (None: the anonymous user, ``""``)."""
    return f"{user_prefix(deployment)}{user_key(user or '')}."


def owner_tag(user: str | None) -> str:
    """16 hex digits that name the owner inside a durable subscription's queue name."""
    return _hex("stompgate-owner\x00" + (user or ""))[:_OWNER_TAG_LENGTH]


def durable_queue_name(
    user: str | None,
    subscription_id: str,
    destination: str,
    deployment: str = DEFAULT_DEPLOYMENT,
) -> str:
    """The queue of a durable subscription: deterministic in (user, subscription id,
    destination), so the same user re-subscribing with the same id to the same destination,
    on any node, finds its messages; and it names its owner (:func:`owner_tag`). The
    destination is part of it (as in RabbitMQ's plugin) because clients such as STOMP.js
    number their ids ``sub-0``, ``sub-1``... per connection: without it, ``sub-0`` for another
    room would reuse (and keep the bindings of) the old queue."""
    material = "\x00".join((user or "", subscription_id, destination))
    prefix = durable_prefix(deployment)
    return f"{prefix}{owner_tag(user)}{_hex(material)[:_DIGEST_LENGTH]}"


def owns(user: str | None, name: str, deployment: str = DEFAULT_DEPLOYMENT) -> bool:
    """Does ``name`` belong to ``user``: in their namespace, or their durable subscription's?"""
    if name.startswith(user_prefix(deployment)):
        return name.startswith(user_namespace(user, deployment))
    durable = durable_prefix(deployment)
    if name.startswith(durable):
        start = len(durable)
        return name[start : start + _OWNER_TAG_LENGTH] == owner_tag(user)
    return False


def shown_name(name: str) -> str:
    """A client-supplied name as an explanation may show it: printable, at most 120 characters."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)
    return text if len(text) <= 120 else text[:117] + "..."


def _reserved_match(patterns: tuple[str, ...], name: str) -> bool:
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """The queue rules of a deployment. Environment variables (prefix ``STOMPGATE_``):

    =============================  =============================  ================================
    variable                       field                          default
    =============================  =============================  ================================
    ``RESERVED_QUEUES``            ``reserved``                   ``stompgate.*``, ``amq.*`` only
    ``QUEUE_TYPES``                ``queue_types``                ``classic,quorum,stream``
    ``QUEUE_ARGUMENT_LIMITS``      ``argument_limits``            the bounds in security.md
    ``MAX_DURABLE_SUBSCRIPTIONS``  ``max_durable_subscriptions``  ``50`` per user (0: no cap)
    =============================  =============================  ================================

    ``RESERVED_QUEUES`` is a comma list of names, reserved besides ``<deployment>.*``,
    ``stompgate.*`` and ``amq.*`` (always); a trailing ``*`` makes one a prefix.
    ``deployment`` (the gateway's ``--deployment``, set by the gateway: not read here) names
    the users' namespaces and durable queues.
    ``QUEUE_ARGUMENT_LIMITS`` is a comma list of ``x-name=high`` or ``x-name=low:high``.
    """

    reserved: tuple[str, ...] = RESERVED_QUEUES
    queue_types: tuple[str, ...] = QUEUE_TYPES
    argument_limits: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: DEFAULT_ARGUMENT_LIMITS
    )
    max_durable_subscriptions: int = 50
    deployment: str = DEFAULT_DEPLOYMENT

    def __post_init__(self) -> None:
        check_deployment(self.deployment)
        own = f"{self.deployment}.*"
        if own not in self.reserved:
            object.__setattr__(self, "reserved", (own, *self.reserved))
        unknown = set(self.queue_types) - set(QUEUE_TYPES)
        if unknown or not self.queue_types:
            raise ValueError(
                f"queue types must be some of {', '.join(QUEUE_TYPES)}: got "
                f"{', '.join(self.queue_types) or 'none'}"
            )
        for name, (low, high) in self.argument_limits.items():
            if name not in DEFAULT_ARGUMENT_LIMITS:
                raise ValueError(
                    f"no limit can be set for {name!r}: one of {', '.join(DEFAULT_ARGUMENT_LIMITS)}"
                )
            if not 0 <= low <= high:
                raise ValueError(f"limit of {name} must be 0 <= low <= high: got {low}:{high}")
        if self.max_durable_subscriptions < 0:
            raise ValueError("max_durable_subscriptions must not be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "STOMPGATE_") -> QueuePolicy:
        extra = _env.get_list(environ, f"{prefix}RESERVED_QUEUES", ())
        limits = dict(DEFAULT_ARGUMENT_LIMITS)
        for item in _env.get_list(environ, f"{prefix}QUEUE_ARGUMENT_LIMITS", ()):
            name, sep, value = item.partition("=")
            low_text, colon, high_text = value.partition(":")
            try:
                if not sep:
                    raise ValueError(item)
                default_low = limits.get(name.strip(), (0, 0))[0]
                low = int(low_text) if colon else default_low
                high = int(high_text if colon else low_text)
            except ValueError:
                raise ValueError(
                    f"{prefix}QUEUE_ARGUMENT_LIMITS: expected x-name=high or x-name=low:high, "
                    f"got {item!r}"
                ) from None
            limits[name.strip()] = (low, high)
        try:
            return cls(
                reserved=tuple(dict.fromkeys((*RESERVED_QUEUES, *extra))),
                queue_types=_env.get_list(environ, f"{prefix}QUEUE_TYPES", QUEUE_TYPES),
                argument_limits=MappingProxyType(limits),
                max_durable_subscriptions=_env.get_int(
                    environ, f"{prefix}MAX_DURABLE_SUBSCRIPTIONS", 50
                ),
            )
        except ValueError as exc:
            raise ValueError(f"{prefix}QUEUE_*: {exc}") from None

    def is_reserved(self, name: str) -> bool:
        return _reserved_match(self.reserved, name)

    def queue_refusal(self, user: str | None, use: QueueUse) -> str | None:
        """Why ``user`` may not use ``use`` unless an ACL ``queue`` rule allows it (None: they
        may). Their own queues (:func:`owns`) are always theirs."""
        name = use.name
        if owns(user, name, self.deployment):
            return None
        shown = shown_name(name)
        if use.role is QueueRole.REPLY:
            if name.startswith(SERVER_NAMED_PREFIX):
                return None
            return (
                f"a SEND to /reply-queue/ may only reach a queue the broker named "
                f"({SERVER_NAMED_PREFIX}*, someone's temp queue): '{shown}' is not one"
            )
        if use.role is QueueRole.NAMED:
            return (
                f"x-queue-name '{shown}' is outside your namespace: name your queues "
                f"{user_namespace(user, self.deployment)}<name>"
            )
        if self.is_reserved(name):
            mine = (durable_prefix(self.deployment), user_prefix(self.deployment))
            if name.startswith(mine):
                return f"queue '{shown}' belongs to another user"
            return f"queue '{shown}' is reserved"
        return None

    def argument_refusal(self, arguments: Mapping[str, int | str | bool]) -> str | None:
        """Why these (typed) queue arguments are not allowed here, or None."""
        queue_type = arguments.get("x-queue-type")
        if queue_type is not None and queue_type not in self.queue_types:
            return (
                f"x-queue-type must be one of {', '.join(self.queue_types)} here: "
                f"got '{shown_name(str(queue_type))}'"
            )
        for name, value in arguments.items():
            bounds = self.argument_limits.get(name)
            if bounds is None or isinstance(value, bool) or not isinstance(value, int):
                continue
            low, high = bounds
            if not low <= value <= high:
                return f"{name} must be between {low} and {high} here: got {value}"
        return None
