"""A robust AMQP connection over the nodes of a RabbitMQ cluster.

aio-pika's :class:`~aio_pika.RobustConnection` reconnects by itself and restores channels,
queues, bindings and consumers, but always to the one URL it was made with. A worker given
several URLs (the nodes of one cluster) must move to another node when its node is lost.
:class:`ClusterConnection` is that robust connection with a list of URLs: every connection
attempt that follows a failed attempt or a lost connection goes to the next URL in turn; an
attempt that follows a success stays. :func:`connect_cluster` makes the first connection,
trying each URL once before it gives up (the worker's start fails fast, as with one URL).

How it hooks in (aio-pika 10): the robust connection's reconnect loop clears ``transport``
before each attempt and sets it once connected; both go through the property below, which
moves ``url`` (what the attempt connects to) on when the previous attempt did not connect or
the connection was lost since. tests/workers/test_cluster_connection.py pins this behaviour.

One known, harmless line of aio-pika's is filtered out (:class:`ChannelRestoreNoise`): when
the connection is lost, each robust channel's close callback (``RobustChannel._on_close``)
tries to reopen the channel at once, on the connection that is gone, fails, and aio-pika
logs ``Callback <OneShotCallback: cb=<bound method RobustChannel._on_close ...>> error:
RuntimeError: <Connection: ...> closed`` (or ``ChannelInvalidStateError: No active transport
in channel``) at ERROR, once per channel and loss. The robust connection restores every
channel when it reconnects, so nothing is lost: that is aio-pika's race (upstream
mosquito/aio-pika#668; logged rather than left as an unretrieved task exception since
mosquito/aio-pika#672), not a channel closed twice nor a callback on a closed loop of ours,
and plain ``aio_pika.connect_robust`` prints the same lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustConnection, UnderlayConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

__all__ = ["ChannelRestoreNoise", "ClusterConnection", "connect_cluster", "shown"]

log = logging.getLogger("stompgate.workers")

#: aio-pika's log call for a failed callback (aio_pika/tools.py, ``OneShotCallback``)
_CALLBACK_ERROR = "Callback %r error: %s: %s"
#: what the failed reopen raises while the connection is gone (both RuntimeError)
_GONE = (" closed", "No active transport in channel")


class ChannelRestoreNoise(logging.Filter):
    """Drops aio-pika's ERROR line for a robust channel's failed reopen on a lost connection
    (see the module's docstring); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg != _CALLBACK_ERROR or not isinstance(args, tuple) or len(args) != 3:
            return True
        callback, _, exc = args
        method = getattr(callback, "callback", None)  # the OneShotCallback's bound method
        if getattr(method, "__qualname__", "") != "RobustChannel._on_close":
            return True
        return not (isinstance(exc, RuntimeError) and str(exc).endswith(_GONE))


_NOISE = ChannelRestoreNoise()


def quiet_channel_restore_noise() -> None:
    """Install `ChannelRestoreNoise` on aio-pika's logger of callbacks (once)."""
    logger = logging.getLogger("aio_pika.tools")
    if _NOISE not in logger.filters:
        logger.addFilter(_NOISE)


def shown(url: URL) -> str:
    """``url`` for a log line, without its password."""
    return str(url.with_password("***")) if url.password else str(url)


class ClusterConnection(RobustConnection):
    """A robust connection that moves through ``urls`` (one cluster's nodes) on failure."""

    def __init__(self, urls: Sequence[str], *, start: int = 0, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("ClusterConnection needs at least one URL")
        self._urls = tuple(URL(url) for url in urls)
        self._index = start % len(self._urls)
        self._move_on = False
        self._underlay: UnderlayConnection | None = None
        super().__init__(self._urls[self._index], **kwargs)
        self._move_on = False  # the constructor's ``transport = None`` is no attempt

    @property
    def transport(self) -> UnderlayConnection | None:
        return self._underlay

    @transport.setter
    def transport(self, value: UnderlayConnection | None) -> None:
        self._underlay = value
        if value is not None:  # connected: the next attempt (after a loss) moves on
            self._move_on = False
            return
        closing = getattr(self, "_close_in_progress", False) or getattr(
            self, "_close_called", False
        )
        if closing:
            return
        if self._move_on and len(self._urls) > 1:
            self._index = (self._index + 1) % len(self._urls)
            self.url = self._urls[self._index]
            log.warning("trying the next RabbitMQ node: %s", shown(self.url))
        self._move_on = True  # until this attempt connects

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        self._move_on = True  # lost: the next attempt goes to another node
        await super()._on_connection_close(closing)


async def connect_cluster(urls: Sequence[str], **kwargs: Any) -> AbstractRobustConnection:
    """A :class:`ClusterConnection` to the first of ``urls`` that answers; the last node's
    error when none does."""
    quiet_channel_restore_noise()
    for start, url in enumerate(urls):
        connection = ClusterConnection(urls, start=start, **kwargs)
        try:
            await connection.connect()
        except CONNECTION_EXCEPTIONS as exc:
            await connection.close()
            if start == len(urls) - 1:
                raise
            log.warning("cannot connect to RabbitMQ at %s (%s)", shown(URL(url)), exc)
            continue
        return connection
    raise ValueError("connect_cluster needs at least one URL")
