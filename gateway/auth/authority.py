"""What a SUBSCRIBE or SEND needs the right to do beyond its own destination.

A frame's destination is authorized when the frame arrives (hygiene, then the ACL). What the
frame *becomes* on the broker may reach further: a queue named by ``x-queue-name``, the queue a
``/queue/`` or ``/amq/queue/`` destination names, the target a queue's dead-letter arguments
send messages to, the queue arguments it declares. The relay's planner lists all of it in one
:class:`Authority` per plan; the gatekeeper authorizes it in one call before anything reaches
the broker (:meth:`gateway.auth.gatekeeper.Gatekeeper.authorize`).

This module is data only: it imports nothing of the project.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["NO_AUTHORITY", "Authority", "Authorize", "QueueRole", "QueueUse"]


class QueueRole(enum.Enum):
    """Why a plan uses a queue, which decides what it takes to be allowed to."""

    DESTINATION = "destination"
    """The queue a ``/queue/<name>`` or ``/amq/queue/<name>`` destination (or a SUBSCRIBE to
    ``/reply-queue/<name>``) names: the destination ACL already allowed the name; it must
    not be in a reserved namespace unless it is the caller's own or a ``queue`` rule allows
    it."""
    NAMED = "named"
    """A queue named by the client in a header (``x-queue-name``): it must be in the caller's
    own namespace unless a ``queue`` rule allows it."""
    REPLY = "reply"
    """The queue a SEND to ``/reply-queue/<name>`` reaches: only a queue the broker named
    (``amq.gen-*``, someone's temp queue) unless a ``queue`` rule allows it."""


@dataclass(frozen=True, slots=True)
class QueueUse:
    """A broker queue a plan declares, consumes, binds or publishes to, and why."""

    name: str
    role: QueueRole


_NO_ARGUMENTS: Final[Mapping[str, int | str | bool]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Authority:
    """Everything a plan needs besides its frame's destination.

    * ``queues``: the broker queues it uses by name (server-named and node-private queues
      are not listed: no client can name them);
    * ``dead_letters``: the destinations a dead-lettered message of a queue it declares is
      published to, as a SEND there would name them (``/queue/<key>`` for the default
      exchange, ``/topic/<key>`` for ``amq.topic``, ``/exchange/<x>/<key>`` otherwise);
      ``dead_letter_unbounded``: it declares ``x-dead-letter-exchange`` without
      ``x-dead-letter-routing-key``, so dead letters keep whatever routing key they had;
    * ``arguments``: the ``x-`` queue arguments it declares, typed.
    """

    queues: tuple[QueueUse, ...] = ()
    dead_letters: tuple[str, ...] = ()
    dead_letter_unbounded: bool = False
    arguments: Mapping[str, int | str | bool] = field(default_factory=lambda: _NO_ARGUMENTS)

    def __bool__(self) -> bool:
        return bool(
            self.queues or self.dead_letters or self.dead_letter_unbounded or self.arguments
        )


#: A plan that needs nothing beyond its destination (most of them: every topic SEND).
NO_AUTHORITY: Final = Authority()

Authorize = Callable[[Authority], Awaitable[None]]
"""Authorize a plan's :class:`Authority` for the client it runs for; raises the
:class:`~gateway.errors.ClientError` the client gets."""
