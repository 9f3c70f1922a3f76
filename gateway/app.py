"""Assemble a gateway node: aiohttp app (WebSocket, health, metrics, history, rooms, push
subscriptions, durable subscriptions, presence, profiles, the demo page), TCP listener.

``Gateway`` is what ``python -m gateway`` runs and what tests start in-process on ephemeral
ports. Nothing here is a module global: everything hangs off the settings passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp import web

from gateway import stomp_headers
from gateway.access import Access, auth_settings, build_access
from gateway.auth.input_budget import NodeInputBudget
from gateway.chat.outage import store_outage_middleware
from gateway.chat.push_api import install_push_api
from gateway.chat.typing import TypingSettings
from gateway.chat_bridge import (
    ChatBridge,
    build_chat,
    build_profiles,
    build_rooms,
    relay_publisher,
    request_user,
)
from gateway.connection import Connection
from gateway.demo import DemoSite
from gateway.durable_api import DurableApi
from gateway.lifecycle import LifecycleListener, LogListener, MetricsListener
from gateway.metrics import Metrics, RoomOrderCollector
from gateway.node import Node
from gateway.ports import ConnectionLimits, Outbound
from gateway.presence import PresenceSettings, PresenceTracker
from gateway.presence_bridge import PresenceBridge, build_presence
from gateway.relay import Relay, RelaySettings
from gateway.relay.durable import DurableRegistry
from gateway.router import AppPort, Router
from gateway.settings import ConfigurationError, Settings
from gateway.stomp import Limits, SessionConfig
from gateway.transport.base import OpenConnection
from gateway.transport.http_guard import HttpGuard
from gateway.transport.lean_ws import LeanEndpoint
from gateway.transport.tcp import TcpListener
from gateway.transport.tls import server_context
from gateway.transport.ws import WebSocketEndpoint

log = logging.getLogger("stompgate.app")

_S = TypeVar("_S")


class Gateway:
    """One running node. ``await start()``, then ``http_port``/``stomp_port`` are bound.

    Objects are built in the order they depend on each other and given what they need
    through their constructors: the access policy and the node first; the relay, which calls
    the node when it loses the broker and around each read; the chat layer (it publishes
    through the relay; async: it leases its Snowflake node id in Redis) with the rooms (their
    store and membership caches are made before the access policy, whose ACL falls back on
    them; a removal ends sessions through the node); presence (its tracker hears the node's
    lifecycle events; its keeper registers the node in Redis and publishes through the relay;
    it reads the rooms' membership); the router over them; then the transports, which open
    connections wired to all of these.

    Presence and typing read their settings from the environment (``STOMPGATE_PRESENCE*``,
    ``STOMPGATE_TYPING_*``) unless they are given.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        access: Access | None = None,
        listeners: Sequence[LifecycleListener] = (),
        presence: PresenceSettings | None = None,
        typing: TypingSettings | None = None,
    ) -> None:
        """``listeners`` hear the node's lifecycle events after its metrics, logs and
        presence do."""
        self.settings = settings
        #: TLS on both listeners (``--tls-cert``), read here: unusable files fail at once.
        self.tls = server_context(settings)
        self.metrics = Metrics()
        if access is None:
            auth = auth_settings(settings)
            self.rooms = build_rooms(settings, auth.membership_prefix)
            membership = None if self.rooms is None else self.rooms.membership
            access = build_access(settings, auth=auth, membership_fallback=membership)
        else:
            self.rooms = build_rooms(settings, access.settings.membership_prefix)
        self.access = access
        self.presence_settings = presence or _from_env(PresenceSettings.from_env)
        self.typing_settings = typing or _from_env(TypingSettings.from_env)
        builtin: tuple[LifecycleListener, ...] = (MetricsListener(self.metrics), LogListener())
        self.presence_tracker: PresenceTracker | None = None
        if self.presence_settings.enabled:
            self.presence_tracker = PresenceTracker(
                active_every=self.presence_settings.active_every
            )
            builtin += (self.presence_tracker,)
        #: The profile store and the recorder of tokens' language claims (with a store): the
        #: recorder hears every accepted CONNECT.
        self.profiles = build_profiles(settings)
        if self.profiles is not None:
            builtin += (self.profiles.recorder,)
        self.node = Node(settings, self.access, listeners=(*builtin, *listeners))
        self.relay = Relay(
            RelaySettings(
                amqp_url=settings.broker_url,
                reconnect_max_delay=settings.amqp_reconnect_max_delay,
                node_id=settings.node_id,
                order_hold=settings.order_hold_ms / 1000,
                deployment=settings.deployment,
                topic_exchange=settings.topic_exchange,
            ),
            on_connection_lost=self.node.broker_lost,
            read_hooks=(self.node.begin_batch, self.node.end_batch),
            durables=DurableRegistry(
                self.access.redis,
                key_prefix=settings.redis_prefix,
                limit=self.access.settings.queues.max_durable_subscriptions,
            ),
        )
        self.metrics.registry.register(RoomOrderCollector(self.relay))
        self.chat: ChatBridge | None = None
        self.presence: PresenceBridge | None = None
        #: The HTTP port's per-IP count and request-header deadline, from accept on.
        self.http_guard = HttpGuard(
            self.access, self.metrics, settings.http_header_timeout, settings.ws_path
        )
        self.app = web.Application(
            middlewares=[self.http_guard.middleware, store_outage_middleware]
        )
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        install_push_api(self.app, settings.store, request_user(self.access))
        demo = DemoSite(
            auth=self.access.settings,
            ws_path=settings.ws_path,
            chat_max_body=settings.chat_max_body,
        )
        self.app.router.add_routes(demo.routes())
        self._runner: web.AppRunner | None = None
        self._http: asyncio.Server | None = None
        self._tcp: TcpListener | None = None
        #: Makes the connection of a new socket (set by start(); the transports use it).
        self.open_connection: OpenConnection | None = None
        self.http_port = 0
        self.stomp_port = 0

    async def start(self) -> None:
        settings = self.settings
        await self.relay.start()
        await self.node.start()
        self.chat = await build_chat(
            settings,
            self.relay,
            self.access,
            self.app,
            rooms=self.rooms,
            evict=self.node.evict,
            profiles=self.profiles,
            typing=self.typing_settings,
            confirm_latency=self.metrics.confirm_latency.observe,
        )
        durable = self._durable_api()
        self.app.router.add_routes(durable.routes(self.access.authenticate_request))
        apps: list[AppPort] = [durable]
        if self.presence_tracker is not None:
            self.presence = await build_presence(
                settings,
                self.presence_settings,
                self.presence_tracker,
                self.relay,
                self.access,
                self.app,
                rooms=self.rooms,
            )
            apps.append(self.presence)
        router = Router(self.relay, self.chat, apps)
        open_connection = self.open_connection = self._opener(router)
        endpoint = WebSocketEndpoint(
            settings, self.node, self.access, self.metrics, open_connection, self.http_guard
        )
        self.app.router.add_get(settings.ws_path, endpoint.handle)
        if settings.ws_impl == "lean" and not settings.ws_compress:
            # Upgrades to /ws are served on a bare asyncio protocol; the aiohttp route above
            # still answers what the lean path leaves to it (e.g. an upgrade after another
            # request on a kept-alive socket, an old protocol version, a malformed one).
            self.http_guard.serve_websockets(
                LeanEndpoint(settings, self.node, self.access, self.metrics, open_connection)
            )
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None  # set up above
        self._http = await asyncio.get_running_loop().create_server(
            self.http_guard.factory(server),
            settings.http_host,
            settings.http_port,
            ssl=self.tls,
        )
        sockets = self._http.sockets
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else settings.http_port
        if settings.stomp_port:
            self._tcp = TcpListener(self.node, self.access, self.metrics, open_connection)
            self.stomp_port = await self._tcp.start(
                settings.stomp_host,
                settings.stomp_port,
                tls=self.tls,
                handshake_timeout=settings.connect_timeout or None,
            )
        tls = self.tls is not None
        log.info(
            "gateway node %s listening: %s://%s:%d%s, stomp %s",
            settings.node_id,
            "wss" if tls else "ws",
            settings.http_host,
            self.http_port,
            settings.ws_path,
            f"{'tls' if tls else 'tcp'}://{settings.stomp_host}:{self.stomp_port}"
            if self.stomp_port
            else "off",
        )

    def _durable_api(self) -> DurableApi:
        """Users' durable subscriptions over STOMP (``/app/durable-subscriptions/...``, answered
        on the node's own account) and HTTP."""
        subscriptions = self.relay.durable_subscriptions
        assert subscriptions is not None  # the relay was given a registry
        publish = relay_publisher(self.relay, "durable-subscriptions")
        return DurableApi(subscriptions, publish, self.settings.deployment)

    def _opener(self, router: Router) -> OpenConnection:
        node, access, metrics = self.node, self.access, self.metrics
        budget = NodeInputBudget(self.settings.max_buffered_bytes)
        per_listener = {
            name: connection_limits(self.settings, transport=name, input_budget=budget)
            for name in ("ws", "tcp")
        }

        def open_connection(
            out: Outbound, *, transport_name: str, peer: str, handshake_token: str | None = None
        ) -> Connection:
            conn = Connection(
                out,
                node,
                access=access,
                router=router,
                metrics=metrics,
                limits=per_listener[transport_name],
                transport_name=transport_name,
                peer=peer,
                handshake_token=handshake_token,
            )
            node.opened(conn)  # from here on, node.forget() releases the IP slot
            return conn

        return open_connection

    async def stop(self, reason: str = "server shutting down") -> None:
        if self._tcp is not None:
            await self._tcp.stop()
        if self._http is not None:
            self._http.close()  # no new sockets; those open are drained below
            self.http_guard.close_undecided()
        await self.node.stop(reason)
        if self.presence is not None:
            await self.presence.close()  # publishes through the relay: before it closes
        await self.relay.close()
        if self.chat is not None:
            await self.chat.close()
        await self.access.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def ready(self) -> bool:
        """The relay is connected to RabbitMQ and the node is not draining."""
        return self.relay.ready and not self.node.draining

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.settings.node_id})

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"ready": True})
        reason = "draining" if self.node.draining else "broker unreachable"
        return web.json_response({"ready": False, "reason": reason}, status=503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain")


def _from_env(build: Callable[[], _S]) -> _S:
    """Feature settings from the environment; ConfigurationError for a value they refuse."""
    try:
        return build()
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def connection_limits(
    settings: Settings, *, transport: str = "ws", input_budget: NodeInputBudget | None = None
) -> ConnectionLimits:
    """The limits every connection of a node's listener shares (``transport``: ``ws`` or
    ``tcp``, whose frame size is its own), from the node's settings; ``input_budget`` is
    the node's, shared by its listeners."""
    frame_size = settings.tcp_max_frame_size if transport == "tcp" else settings.max_frame_size
    limits = Limits(
        max_frame_size=frame_size,
        max_headers=settings.max_headers,
        max_header_line=settings.max_header_line,
        max_subscriptions=settings.max_subscriptions,
        max_transactions=settings.max_transactions,
        max_transaction_frames=settings.max_transaction_frames,
        max_transaction_bytes=settings.max_transaction_bytes,
    )
    heartbeat = (settings.heartbeat_send_ms, settings.heartbeat_receive_ms)
    return ConnectionLimits(
        SessionConfig(
            limits=limits,
            server_name="stompgate/0.1",
            heartbeat=heartbeat,
            violation_headers=((stomp_headers.REASON, "protocol"),),
        ),
        max_unconfirmed=settings.max_unconfirmed,
        max_outbound_buffer=settings.max_outbound_buffer,
        # One read is charged at most this much: a frame of the largest size the listener
        # takes must always pass (every rate profile's byte burst is at least that).
        bytes_burst=frame_size,
        input_budget=input_budget or NodeInputBudget(settings.max_buffered_bytes),
    )


async def serve(settings: Settings) -> None:
    """Run one node until SIGTERM/SIGINT, then drain."""
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    # Everything made so far (modules, classes, settings, the app) lives as long as the
    # process: keep it out of the cyclic collector's full passes, which otherwise walk it
    # again and again (tens of ms each, under load every few seconds).
    gc.collect()
    gc.freeze()
    await stop.wait()
    log.info("signal received: draining")
    await gateway.stop()
