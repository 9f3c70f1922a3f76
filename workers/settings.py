"""Worker settings: a frozen dataclass built from the environment and passed in.

| variable | default | meaning |
|---|---|---|
| STOMPGATE_AMQP_URL | amqp://guest:guest@127.0.0.1:5672/ | broker; cluster: URLs, comma-separated |
| STOMPGATE_AMQP_HEARTBEAT | 60 | AMQP heart-beat, s: ~3 silent ones drop a connection; 0 = none |
| STOMPGATE_DEPLOYMENT | stompgate | deployment name: first word of the workers' queues |
| STOMPGATE_TOPIC_EXCHANGE | amq.topic | the rooms' topic exchange (declared if not amq.) |
| STOMPGATE_REDIS_URL | redis://127.0.0.1:6379/0 | the deployment's Redis (persist: namespace) |
| STOMPGATE_REDIS_PREFIX | (<deployment>:) | prefix of the deployment's Redis keys |
| STOMPGATE_STORE | sqlite:///var/stompgate.db | message store (sqlite:///path, mongodb://host/db) |
| STOMPGATE_PERSIST_QUEUE | (<deployment>.persist) | persist worker: its queue (one per store) |
| STOMPGATE_WORKER_METRICS_PORT | 9108 | /healthz and /metrics; "off" (or empty) for none |
| STOMPGATE_WORKER_METRICS_HOST | 0.0.0.0 | address the health server listens on |
| STOMPGATE_WORKER_PREFETCH | (the code's, else 100) | unacked deliveries per consumer |
| STOMPGATE_WORKER_CONCURRENCY | (the code's, else 10) | handler calls at once per consumer |
| STOMPGATE_WORKER_DRAIN_TIMEOUT | 30 | seconds a SIGTERM drain waits for in-flight work |
| STOMPGATE_WORKER_RECONNECT_INTERVAL | 1 | seconds between attempts to reach RabbitMQ |
| STOMPGATE_PERSIST_BATCH_SIZE | 500 | persist worker: messages per store write |
| STOMPGATE_PERSIST_BATCH_WAIT_MS | 50 | persist worker: longest wait to fill a batch |
| STOMPGATE_QUORUM_INITIAL_GROUP_SIZE | (every node) | members of each new quorum queue |
| STOMPGATE_LOG_LEVEL | INFO | logging level |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatstate.amqp_urls import split_amqp_urls as _split
from chatstate.amqp_urls import with_heartbeat
from chatstate.deployment import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_TOPIC_EXCHANGE,
    check_deployment,
    check_topic_exchange,
    default_redis_prefix,
)

PREFIX = "STOMPGATE_"


def split_amqp_urls(value: str) -> tuple[str, ...]:
    """The AMQP URLs of ``value`` (one, or a cluster's nodes comma-separated), as the
    gateway's ``--amqp-url`` reads them; errors name ``STOMPGATE_AMQP_URL``."""
    return _split(value, f"{PREFIX}AMQP_URL")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_heartbeat: int = 60
    deployment: str = DEFAULT_DEPLOYMENT
    topic_exchange: str = DEFAULT_TOPIC_EXCHANGE
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = field(default="")
    store_url: str = "sqlite:///var/stompgate.db"
    persist_queue: str = ""
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9108
    prefetch: int | None = None
    concurrency: int | None = None
    drain_timeout: float = 30.0
    reconnect_interval: float = 1.0
    persist_batch_size: int = 500
    persist_batch_wait: float = 0.05
    quorum_group_size: int | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        split_amqp_urls(self.amqp_url)
        if not 0 <= self.amqp_heartbeat <= 65535:
            raise ValueError(f"{PREFIX}AMQP_HEARTBEAT must be 0..65535, got {self.amqp_heartbeat}")
        _with_heartbeat(self.amqp_url, self.amqp_heartbeat)  # a conflict raises
        check_deployment(self.deployment, source=PREFIX + "DEPLOYMENT")
        check_topic_exchange(self.topic_exchange, source=PREFIX + "TOPIC_EXCHANGE")
        if not self.redis_prefix:  # derived: the deployment's own keys
            object.__setattr__(self, "redis_prefix", default_redis_prefix(self.deployment))
        if not self.persist_queue:
            object.__setattr__(self, "persist_queue", f"{self.deployment}.persist")

    def queue(self, name: str) -> str:
        """A queue of the deployment: `<deployment>.<name>`."""
        return f"{self.deployment}.{name}"

    @property
    def broker_url(self) -> str:
        """``amqp_url`` with ``heartbeat=amqp_heartbeat`` in its query (aio-pika reads it)."""
        return _with_heartbeat(self.amqp_url, self.amqp_heartbeat)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, flags: Mapping[str, str | None] | None = None
    ) -> WorkerSettings:
        """From STOMPGATE_* variables; `flags` (command-line values by variable name without
        the prefix, e.g. {"STORE": ...}; None: not given) win over them."""
        env = os.environ if environ is None else environ
        given = {k: v for k, v in (flags or {}).items() if v is not None}

        def get(name: str) -> str | None:
            value = given.get(name, env.get(PREFIX + name))
            return value.strip() if value is not None and value.strip() else None

        deployment = get("DEPLOYMENT") or DEFAULT_DEPLOYMENT
        d = cls(deployment=deployment)
        return cls(
            amqp_url=get("AMQP_URL") or d.amqp_url,
            amqp_heartbeat=_heartbeat(get("AMQP_HEARTBEAT"), d.amqp_heartbeat),
            deployment=deployment,
            topic_exchange=get("TOPIC_EXCHANGE") or d.topic_exchange,
            redis_url=get("REDIS_URL") or d.redis_url,
            redis_prefix=get("REDIS_PREFIX") or d.redis_prefix,
            store_url=get("STORE") or d.store_url,
            persist_queue=get("PERSIST_QUEUE") or d.persist_queue,
            metrics_host=get("WORKER_METRICS_HOST") or d.metrics_host,
            metrics_port=_port(env.get(PREFIX + "WORKER_METRICS_PORT"), d.metrics_port),
            prefetch=_positive_int("WORKER_PREFETCH", get("WORKER_PREFETCH")),
            concurrency=_positive_int("WORKER_CONCURRENCY", get("WORKER_CONCURRENCY")),
            drain_timeout=_positive_float(
                "WORKER_DRAIN_TIMEOUT", get("WORKER_DRAIN_TIMEOUT"), d.drain_timeout
            ),
            reconnect_interval=_positive_float(
                "WORKER_RECONNECT_INTERVAL", get("WORKER_RECONNECT_INTERVAL"), d.reconnect_interval
            ),
            persist_batch_size=_positive_int("PERSIST_BATCH_SIZE", get("PERSIST_BATCH_SIZE"))
            or d.persist_batch_size,
            persist_batch_wait=_positive_float(
                "PERSIST_BATCH_WAIT_MS", get("PERSIST_BATCH_WAIT_MS"), d.persist_batch_wait * 1000
            )
            / 1000,
            quorum_group_size=_positive_int(
                "QUORUM_INITIAL_GROUP_SIZE", get("QUORUM_INITIAL_GROUP_SIZE")
            ),
            log_level=(get("LOG_LEVEL") or d.log_level).upper(),
        )


def _heartbeat(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    return _int(PREFIX + "AMQP_HEARTBEAT", raw)


def _with_heartbeat(url: str, seconds: int) -> str:
    return with_heartbeat(url, seconds, f"{PREFIX}AMQP_URL", f"{PREFIX}AMQP_HEARTBEAT")


def _port(raw: str | None, default: int | None) -> int | None:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("", "off", "none", "disabled"):
        return None
    port = _int(PREFIX + "WORKER_METRICS_PORT", value)
    if not 0 <= port <= 65535:
        raise ValueError(f"{PREFIX}WORKER_METRICS_PORT out of range: {port}")
    return port


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _positive_int(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    value = _int(PREFIX + name, raw)
    if value < 1:
        raise ValueError(f"{PREFIX}{name} must be >= 1, got {value}")
    return value


def _positive_float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{PREFIX}{name} must be > 0, got {value}")
    return value
