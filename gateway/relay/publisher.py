"""Publishing with publisher confirms over a small pool of channels.

``publish_channels`` channels in confirm mode share the publishing connection and are used
round-robin, so many sessions keep many publishes in flight at once (one SEND awaits its own
confirm; nobody waits for anybody else's). A publish returns only when the broker confirmed
it; a nack, a return (for ``mandatory`` publishes), a closed channel, a lost connection or no
confirm within ``confirm_timeout`` raise :class:`~gateway.relay.errors.PublishError`. A
channel the broker closed (say, a race with a deleted exchange) is reopened on next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from aiormq.channel import Channel
from pamqp import commands as spec

from .errors import PublishError, describe_amqp_error
from .settings import RelaySettings

__all__ = ["ConfirmPublisher"]

log = logging.getLogger("stompgate.relay")


class ConfirmPublisher:
    """Round-robin confirm channels; one awaited confirm per publish."""

    def __init__(self, settings: RelaySettings) -> None:
        self._settings = settings
        self._connection: AbstractConnection | None = None
        self._channels: list[AbstractChannel | None] = []
        self._locks: list[asyncio.Lock] = []
        self._next = 0
        self._pending = 0  # publishes awaiting their confirm
        self._idle = asyncio.Event()
        self._idle.set()
        self.unavailable_text = "broker unavailable"

    async def open(self, connection: AbstractConnection) -> None:
        """Open the confirm channels on a fresh connection."""
        channels: list[AbstractChannel | None] = []
        for _ in range(self._settings.publish_channels):
            channels.append(await connection.channel(publisher_confirms=True))
        self._connection = connection
        self._channels = channels
        self._locks = [asyncio.Lock() for _ in channels]

    def reset(self, reason: str) -> None:
        """The connection is gone: forget its channels (in-flight publishes fail by
        themselves, their futures are rejected by aiormq)."""
        self._connection = None
        self._channels = []
        self._locks = []
        self.unavailable_text = f"broker unavailable ({reason})"

    @property
    def inflight(self) -> int:
        return self._pending

    async def drain(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for in-flight publishes to be confirmed."""
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), seconds)

    async def _channel(self) -> AbstractChannel:
        connection = self._connection
        if connection is None or connection.is_closed or not self._channels:
            raise PublishError(self.unavailable_text)
        index = self._next % len(self._channels)
        self._next = index + 1
        channel = self._channels[index]
        if channel is not None and not channel.is_closed:
            return channel
        async with self._locks[index]:
            channel = self._channels[index]
            if channel is None or channel.is_closed:
                try:
                    channel = await connection.channel(publisher_confirms=True)
                except Exception as exc:
                    raise PublishError(f"broker unavailable ({describe_amqp_error(exc)})") from exc
                if self._connection is connection:
                    self._channels[index] = channel
            return channel

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        mandatory: bool = False,
        unroutable: str = "message could not be routed",
    ) -> None:
        """Publish and wait for the confirm; raise PublishError otherwise.

        ``unroutable`` is the error text when a ``mandatory`` publish comes back.
        """
        channel = await self._channel()
        timeout = self._settings.confirm_timeout
        self._pending += 1
        self._idle.clear()
        try:
            # Awaited in this task, no task or waiter of our own per publish; aiormq bounds
            # the whole publish (lock, write, confirm) by the timeout. wait=False: no extra
            # loop turn for the write to drain; the confirm comes after it anyway. (`wait` is
            # on aiormq's Channel, not on its abstract interface.)
            result = await cast(Channel, channel).basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=mandatory,
                timeout=timeout,
                wait=False,
            )
        except TimeoutError as exc:
            raise PublishError(f"broker did not confirm within {timeout:g} s") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller was cancelled
            # aiormq cancelled the confirm: the channel or connection went away
            raise PublishError(f"broker unavailable ({self._closed_reason(channel)})") from None
        except aiormq.exceptions.PublishError as exc:
            raise PublishError(unroutable) from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishError(
                "broker refused the message (nack): a queue may be full or unavailable"
            ) from exc
        except aiormq.exceptions.ChannelClosed as exc:
            raise PublishError(f"broker refused the message: {describe_amqp_error(exc)}") from exc
        except Exception as exc:
            raise PublishError(f"broker unavailable ({describe_amqp_error(exc)})") from exc
        finally:
            self._pending -= 1
            if not self._pending:
                self._idle.set()
        if isinstance(result, spec.Basic.Nack):  # pragma: no cover - aiormq raises
            raise PublishError("broker refused the message (nack)")

    @staticmethod
    def _closed_reason(channel: AbstractChannel) -> str:
        closing = channel.closing
        if closing.done() and not closing.cancelled() and closing.exception() is not None:
            exc = closing.exception()
            assert exc is not None
            return describe_amqp_error(exc)
        if not closing.done():
            closing.cancel()
        return "connection lost"
