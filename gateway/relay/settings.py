"""Relay settings: a frozen dataclass the gateway builds (from its environment) and passes in."""

from __future__ import annotations

from dataclasses import dataclass

from chatstate.amqp_urls import split_amqp_urls

__all__ = ["RelaySettings"]


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """How one gateway node talks to RabbitMQ.

    ``amqp_url``: one AMQP URL, or the URLs of a cluster's nodes separated by commas
    (:attr:`amqp_urls`); the link connects to one at a time and moves to the next when it is
    lost (see :mod:`gateway.relay.link`).

    ``publish_channels`` channels with publisher confirms share the publishing connection
    for publishes to the default exchange (one lane per session). Each client's own
    consumers run on a channel of that client's own; a consume connection takes
    ``client_channels_per_connection`` of them (0: as many as the broker's ``channel_max``
    allows) before the node opens another one. ``confirm_timeout`` bounds the wait for a
    publisher confirm; a SEND that is not confirmed by then fails. ``max_message_size``:
    larger SEND bodies are refused before the broker (RabbitMQ 4's default maximum; the
    broker closes the channel of a larger one).
    """

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    node_id: str = "node-1"
    publish_channels: int = 4
    confirm_timeout: float = 10.0
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 3.0
    default_prefetch: int = 100
    durable_queue_type: str = "quorum"
    user_exchange: str = ""
    """Empty: ``<deployment>.user``."""
    deployment: str = "stompgate"
    """The first word of every queue and exchange the relay declares."""
    topic_exchange: str = "amq.topic"
    """``/topic/`` and the rooms: a topic exchange (declared, durable, unless ``amq.``)."""
    client_channels_per_connection: int = 0
    max_message_size: int = 16 * 1024 * 1024
    connect_timeout: float = 10.0
    order_hold: float = 0.25
    """Seconds a room message waits at most for an earlier one (`ordering`); 0 = no order."""

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """The URLs of ``amqp_url``, in the order the link tries them."""
        return split_amqp_urls(self.amqp_url)

    def __post_init__(self) -> None:
        split_amqp_urls(self.amqp_url)
        if self.publish_channels < 1:
            raise ValueError("publish_channels must be at least 1")
        if self.client_channels_per_connection < 0:
            raise ValueError("client_channels_per_connection must not be negative")
        if self.max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        if self.order_hold < 0:
            raise ValueError("order_hold must not be negative")
        if self.confirm_timeout <= 0:
            raise ValueError("confirm_timeout must be positive")
        if not 0 < self.reconnect_min_delay <= self.reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")
        if not 0 <= self.default_prefetch <= 65535:
            raise ValueError("default_prefetch must be between 0 and 65535")
        if not self.user_exchange:
            object.__setattr__(self, "user_exchange", f"{self.deployment}.user")
        if not self.node_id or not self.deployment or not self.topic_exchange:
            raise ValueError("node_id, deployment and topic_exchange must not be empty")
