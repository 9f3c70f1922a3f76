"""Gateway settings: one frozen dataclass, built from command-line flags and the environment.

Every field is a flag ``--field-name`` and an environment variable ``STOMPGATE_FIELD_NAME``;
a flag given on the command line wins over the environment, which wins over the default.
``python -m gateway --help`` lists them all with their defaults.

A value that cannot be used raises :class:`ConfigurationError`; only the entry point
(``gateway/__main__.py``) turns it into a message and an exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatstate.amqp_urls import split_amqp_urls, with_heartbeat
from chatstate.client import check_key_prefixes
from chatstate.deployment import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_TOPIC_EXCHANGE,
    check_deployment,
    check_topic_exchange,
    default_redis_prefix,
)

ENV_PREFIX = "STOMPGATE_"


class ConfigurationError(Exception):
    """A setting (flag, environment variable or file it names) that cannot be used; the
    text says which one and why."""


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway node can be told. Help texts double as documentation."""

    http_host: str = field(default="0.0.0.0", metadata={"help": "HTTP/WebSocket bind address"})
    http_port: int = field(default=15680, metadata={"help": "HTTP port: /ws, /healthz, /metrics"})
    stomp_host: str = field(default="0.0.0.0", metadata={"help": "plain STOMP bind address"})
    stomp_port: int = field(default=61613, metadata={"help": "plain STOMP TCP port; 0 = off"})
    tls_cert: str = field(
        default="",
        metadata={
            "help": "PEM certificate (chain) file: serve TLS on both listeners (wss:// and"
            " STOMP over TLS); empty = plain ws:// and tcp://"
        },
    )
    tls_key: str = field(
        default="",
        metadata={"help": "PEM private key file of --tls-cert; empty = the key is in that file"},
    )
    tls_client_ca: str = field(
        default="",
        metadata={
            "help": "PEM CA file: clients must present a certificate it signed (mutual TLS);"
            " empty = no client certificates asked for"
        },
    )
    tls_min_version: str = field(
        default="1.2", metadata={"help": "lowest TLS version accepted: 1.2 or 1.3"}
    )
    amqp_url: str = field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        metadata={
            "help": "RabbitMQ AMQP URL; for a cluster, one URL per node, comma-separated: the"
            " node connects to the first that answers and moves to the next when it is lost"
        },
    )
    amqp_reconnect_max_delay: float = field(
        default=3.0,
        metadata={
            "help": "longest wait, seconds, between attempts to reach RabbitMQ after it was"
            " lost (the first wait is 0.5 s, doubling, jittered); at least 0.5"
        },
    )
    amqp_heartbeat: int = field(
        default=60,
        metadata={
            "help": "seconds between AMQP heart-beats the node asks of RabbitMQ (the smaller of"
            " this and the broker's wins): a connection silent for about two of them (a"
            " half-open network path) counts as lost and is reconnected; 0 = ask for none"
            " (the URL may say heartbeat= instead, but not both differently)"
        },
    )
    deployment: str = field(
        default=DEFAULT_DEPLOYMENT,
        metadata={
            "help": "this deployment's name (1-32 of a-z 0-9 -): the first word of every queue"
            " and exchange it declares (<deployment>.user, <deployment>.node.*...) and the"
            " default Redis prefix; two deployments on one vhost need two names"
        },
    )
    topic_exchange: str = field(
        default=DEFAULT_TOPIC_EXCHANGE,
        metadata={
            "help": "the exchange of /topic/ destinations and rooms (a topic exchange, declared"
            " durable unless amq.topic); two deployments on one vhost need two"
        },
    )
    redis_url: str = field(
        default="redis://127.0.0.1:6379/0",
        metadata={
            "help": "Redis URL: redis://host:port/db (rediss:// for TLS, unix://path), "
            "redis+sentinel://host:port[,host:port...]/<service>[/db] (the primary of a "
            "Sentinel service), or redis+cluster://host:port[,host:port...] (a Redis Cluster: "
            "key prefixes need a hash tag); see docs/operations.md"
        },
    )
    redis_prefix: str = field(
        default="",
        metadata={
            "help": "prefix of Redis keys (the node-id leases' too); empty = '<deployment>:';"
            " with a Redis Cluster it must carry a hash tag, e.g. {stompgate}:"
        },
    )
    redis_max_connections: int = field(
        default=16,
        metadata={
            "help": "connections each of the node's Redis clients (access, chat, presence) may "
            "open; more concurrent commands wait for one; 0 = no bound"
        },
    )
    redis_pool_timeout: float = field(
        default=5.0,
        metadata={
            "help": "seconds a Redis command waits for a free connection before it fails "
            "(as Redis being unavailable); 0 = no limit"
        },
    )
    node_id: str = field(default_factory=_default_node_id, metadata={"help": "this node's name"})
    auth: str = field(default="jwt", metadata={"help": "authentication mode: jwt or dev"})
    dev_users: str = field(
        default="guest:guest",
        metadata={"help": "--auth dev: login:passcode pairs, comma separated"},
    )
    ws_path: str = field(default="/ws", metadata={"help": "WebSocket endpoint path"})
    ws_compress: bool = field(
        default=False,
        metadata={
            "help": "negotiate permessage-deflate (costs CPU and memory; WebSockets are then"
            " served by aiohttp whatever --ws-impl says)"
        },
    )
    ws_impl: str = field(
        default="lean",
        metadata={
            "help": "what serves WebSockets: lean (the node's own asyncio protocol, ~4 KiB per"
            " idle session) or aiohttp (its WebSocketResponse, ~17 KiB)"
        },
    )
    heartbeat_send_ms: int = field(
        default=1000,
        metadata={
            "help": "floor of the heart-beats the node sends, ms: it sends every max(this, "
            "the client's wish); 0 = it sends none"
        },
    )
    heartbeat_receive_ms: int = field(
        default=1000,
        metadata={
            "help": "floor of the heart-beats the node expects, ms: every max(this, the "
            "client's offer); 0 = it checks none"
        },
    )
    heartbeat_grace: float = field(
        default=2.0, metadata={"help": "a client is dropped after this many silent intervals"}
    )
    connect_timeout: float = field(
        default=10.0,
        metadata={
            "help": "seconds a socket may take to finish CONNECT (TCP: from accept;"
            " WebSocket: from the upgrade)"
        },
    )
    max_frame_size: int = field(
        default=4 * 1024 * 1024,
        metadata={"help": "bytes per frame on the WebSocket listener (and its messages)"},
    )
    tcp_max_frame_size: int = field(
        default=16 * 1024 * 1024 + 64 * 1024,
        metadata={
            "help": "bytes per frame on the plain STOMP TCP listener: a 16 MiB message"
            " (RabbitMQ's default maximum) plus 64 KiB of headers"
        },
    )
    tcp_frames_per_second: float = field(
        default=0.0,
        metadata={
            "help": "frames/s per session on the TCP listener; 0 = no limit (the WebSocket"
            " listener's is STOMPGATE_FRAMES_PER_SECOND)"
        },
    )
    tcp_frames_burst: int = field(
        default=0, metadata={"help": "frames a TCP session may send at once; 0 = 2 s worth"}
    )
    tcp_bytes_per_second: float = field(
        default=0.0,
        metadata={"help": "bytes/s per session on the TCP listener; 0 = no limit"},
    )
    tcp_bytes_burst: int = field(
        default=0,
        metadata={
            "help": "bytes a TCP session may send at once (at least --tcp-max-frame-size);"
            " 0 = 2 s worth, at least --tcp-max-frame-size"
        },
    )
    service_roles: str = field(
        default="service",
        metadata={
            "help": "roles (comma separated) whose sessions get the service rate limits on"
            " every listener; empty = none"
        },
    )
    service_frames_per_second: float = field(
        default=0.0,
        metadata={"help": "frames/s per session of a service role; 0 = no limit"},
    )
    service_frames_burst: int = field(
        default=0,
        metadata={"help": "frames a service session may send at once; 0 = 2 s worth"},
    )
    service_bytes_per_second: float = field(
        default=0.0,
        metadata={"help": "bytes/s per session of a service role; 0 = no limit"},
    )
    service_bytes_burst: int = field(
        default=0,
        metadata={
            "help": "bytes a service session may send at once (at least the listener's frame"
            " size); 0 = 2 s worth, at least the listener's frame size"
        },
    )
    frame_timeout: float = field(
        default=30.0,
        metadata={
            "help": "seconds a started frame may take to arrive whole (after CONNECTED);"
            " 0 = no deadline"
        },
    )
    max_buffered_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata={
            "help": "bytes of unfinished frames and open transactions all sessions of the node"
            " may hold together; the session that would go past it is closed; 0 = no limit"
        },
    )
    http_header_timeout: float = field(
        default=10.0,
        metadata={
            "help": "seconds an HTTP connection may take to send a request's headers (each"
            " request, the WebSocket upgrade included); 0 = no deadline"
        },
    )
    max_headers: int = field(default=64, metadata={"help": "headers per frame"})
    max_header_line: int = field(default=8192, metadata={"help": "bytes per header line"})
    max_subscriptions: int = field(default=256, metadata={"help": "subscriptions per session"})
    max_transactions: int = field(default=16, metadata={"help": "open transactions per session"})
    max_transaction_frames: int = field(
        default=1024, metadata={"help": "frames buffered in one transaction"}
    )
    max_transaction_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata={"help": "bytes (headers and bodies) buffered in one transaction; 0 = no limit"},
    )
    max_outbound_buffer: int = field(
        default=4 * 1024 * 1024,
        metadata={"help": "bytes queued to a slow client before it is told and closed"},
    )
    max_unconfirmed: int = field(
        default=128,
        metadata={
            "help": "relay SENDs (with a receipt or without) a session may have awaiting"
            " the broker's confirm while it reads on; 0 = each SEND waits for its confirm"
        },
    )
    store: str = field(
        default="",
        metadata={"help": "message store for history/catch-up: sqlite:///path or mongodb://..."},
    )
    chat_recent_limit: int = field(
        default=200, metadata={"help": "messages per room kept in the Redis recent cache"}
    )
    chat_max_body: int = field(default=16384, metadata={"help": "bytes per /app SEND body"})
    chat_replay_limit: int = field(
        default=1000, metadata={"help": "messages replayed at most on a catch-up SUBSCRIBE"}
    )
    post_idempotency_ttl: int = field(
        default=24 * 3600,
        metadata={
            "help": "seconds a confirmed chat post's client_id is remembered in Redis: a retry"
            " with the same client_id within them gets the original message id and publishes"
            " nothing; at least 60 (a post's pending window)"
        },
    )
    room_max_members: int = field(
        default=100, metadata={"help": "members a group room may have (rooms API)"}
    )
    seen_by_max_members: int = field(
        default=0,
        metadata={
            "help": "rooms up to this size show members' read pointers (seen by) in history"
            " and member lists; 0 = --room-max-members"
        },
    )
    lang_claim: str = field(
        default="locale",
        metadata={
            "help": "token claim naming the user's language (e.g. es, pt-BR; a dotted path),"
            " recorded in their profile for translations; empty = none"
        },
    )
    order_hold_ms: int = field(
        default=250,
        metadata={"help": "ms a room message waits at most for an earlier one; 0 = no order"},
    )
    drain_timeout: float = field(
        default=10.0, metadata={"help": "seconds SIGTERM waits for in-flight confirms"}
    )
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING, ERROR"})
    log_format: str = field(default="json", metadata={"help": "json or console"})
    uvloop: bool = field(default=True, metadata={"help": "use uvloop when it is installed"})

    def __post_init__(self) -> None:
        check_deployment(self.deployment, source="--deployment")
        check_topic_exchange(self.topic_exchange, source="--topic-exchange")
        if not self.redis_prefix:
            object.__setattr__(self, "redis_prefix", default_redis_prefix(self.deployment))
        split_amqp_urls(self.amqp_url)
        if not (
            self.amqp_reconnect_max_delay >= 0.5 and math.isfinite(self.amqp_reconnect_max_delay)
        ):
            raise ValueError(
                "--amqp-reconnect-max-delay must be a number >= 0.5 (seconds), got "
                f"{self.amqp_reconnect_max_delay}"
            )
        if self.auth not in ("jwt", "dev"):
            raise ValueError(f"--auth must be 'jwt' or 'dev', got {self.auth!r}")
        if self.log_format not in ("json", "console"):
            raise ValueError(f"--log-format must be 'json' or 'console', got {self.log_format!r}")
        for name in ("http_port", "stomp_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"--{name.replace('_', '-')} must be 0..65535, got {port}")
        if self.ws_impl not in ("lean", "aiohttp"):
            raise ValueError(f"--ws-impl must be lean or aiohttp, got {self.ws_impl!r}")
        if self.tls_min_version not in ("1.2", "1.3"):
            raise ValueError(f"--tls-min-version must be 1.2 or 1.3, got {self.tls_min_version!r}")
        if (self.tls_key or self.tls_client_ca) and not self.tls_cert:
            raise ValueError("--tls-key and --tls-client-ca need --tls-cert")
        for name in ("heartbeat_send_ms", "heartbeat_receive_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative")
        try:
            check_key_prefixes(self.redis_url, [("--redis-prefix", self.redis_prefix)])
        except ValueError as exc:
            raise ValueError(f"--redis-url: {exc}") from None
        if self.redis_max_connections < 0:
            raise ValueError("--redis-max-connections must not be negative")
        if self.redis_pool_timeout < 0:
            raise ValueError("--redis-pool-timeout must not be negative")
        if self.heartbeat_grace < 1.0:
            raise ValueError("--heartbeat-grace must be at least 1.0")
        if not 0 <= self.amqp_heartbeat <= 65535:
            raise ValueError(f"--amqp-heartbeat must be 0..65535 s, got {self.amqp_heartbeat}")
        with_heartbeat(self.amqp_url, self.amqp_heartbeat)  # a conflict raises
        if self.order_hold_ms < 0:
            raise ValueError(f"--order-hold-ms must not be negative, got {self.order_hold_ms}")
        if self.post_idempotency_ttl < 60:
            raise ValueError(
                "--post-idempotency-ttl must be at least 60 (seconds), got"
                f" {self.post_idempotency_ttl}"
            )
        if self.room_max_members < 2:
            raise ValueError(f"--room-max-members must be at least 2, got {self.room_max_members}")
        if self.seen_by_max_members < 0:
            raise ValueError(
                f"--seen-by-max-members must not be negative, got {self.seen_by_max_members}"
            )
        for name in (
            "tcp_max_frame_size",
            "tcp_frames_per_second",
            "tcp_frames_burst",
            "tcp_bytes_per_second",
            "tcp_bytes_burst",
            "service_frames_per_second",
            "service_frames_burst",
            "service_bytes_per_second",
            "service_bytes_burst",
            "frame_timeout",
            "max_buffered_bytes",
            "http_header_timeout",
            "max_transaction_bytes",
        ):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be a finite number >= 0, got {value}")
        largest = max(self.max_frame_size, self.tcp_max_frame_size)
        for prefix, frame_size in (("tcp", self.tcp_max_frame_size), ("service", largest)):
            burst = getattr(self, f"{prefix}_bytes_burst")
            if burst and burst < frame_size:
                raise ValueError(
                    f"--{prefix}-bytes-burst ({burst}) must be >= {frame_size} (the largest"
                    " frame it applies to), or such a frame could never pass"
                )
        if self.max_unconfirmed < 0:
            raise ValueError(f"--max-unconfirmed must not be negative, got {self.max_unconfirmed}")

    @property
    def broker_url(self) -> str:
        """``amqp_url`` with ``heartbeat=amqp_heartbeat`` in its query: what every AMQP
        connection of the node opens."""
        return with_heartbeat(self.amqp_url, self.amqp_heartbeat)

    @property
    def seen_by_limit(self) -> int:
        """The largest room whose members' read pointers are shown."""
        return self.seen_by_max_members or self.room_max_members

    @property
    def service_role_names(self) -> frozenset[str]:
        """The roles given the service rate limits."""
        return frozenset(r.strip() for r in self.service_roles.split(",") if r.strip())

    def dev_credentials(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for item in self.dev_users.split(","):
            login, sep, passcode = item.strip().partition(":")
            if not sep or not login:
                raise ValueError(f"--dev-users: expected login:passcode, got {item!r}")
            pairs[login] = passcode
        return pairs


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


def _convert(kind: Any, text: str) -> Any:
    if kind in (bool, "bool"):
        return _parse_bool(text)
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stompgate",
        description="STOMP-over-WebSocket gateway node relaying to RabbitMQ. Every flag is also "
        f"an environment variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}AMQP_URL).",
    )
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        help_text = f"{f.metadata.get('help', '')} [env {ENV_PREFIX}{f.name.upper()}; "
        help_text += f"default {default}]"
        parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text)
    return parser


def settings_from(
    flags: Mapping[str, str | None] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from parsed flags (``vars(build_parser().parse_args(...))``; None: not given),
    then environment variables, then defaults. Raises ConfigurationError."""
    env = os.environ if environ is None else environ
    given = {} if flags is None else flags
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = given.get(f.name)
        source = f"--{f.name.replace('_', '-')}"
        if raw is None:
            raw = env.get(ENV_PREFIX + f.name.upper())
            source = ENV_PREFIX + f.name.upper()
        if raw is None:
            continue
        try:
            values[f.name] = _convert(f.type, raw)
        except ValueError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
    try:
        return Settings(**values)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
