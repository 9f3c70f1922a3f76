"""Assemble a gateway node: aiohttp app (WebSocket, health, metrics, history), TCP listener.

``Gateway`` is what ``python -m gateway`` runs and what tests start in-process on ephemeral
ports. Nothing here is a module global: everything hangs off the settings passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from pathlib import Path

from aiohttp import web

from gateway.access import Access, build_access
from gateway.chat_bridge import build_chat
from gateway.metrics import Metrics
from gateway.node import Node
from gateway.relay import Relay, RelaySettings
from gateway.settings import Settings
from gateway.transport.tcp import TcpListener
from gateway.transport.ws import WebSocketEndpoint

log = logging.getLogger("stompgate.app")

STATIC_DIR = Path(__file__).parent / "static"


class Gateway:
    """One running node. ``await start()``, then ``http_port``/``stomp_port`` are bound."""

    def __init__(self, settings: Settings, *, access: Access | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        relay_settings = RelaySettings(
            amqp_url=settings.amqp_url,
            node_id=settings.node_id,
            order_hold=settings.order_hold_ms / 1000,
        )
        self.node = Node(
            settings,
            lambda lost, hooks: Relay(relay_settings, on_connection_lost=lost, read_hooks=hooks),
            access or build_access(settings),
            metrics=self.metrics,
        )
        self.app = web.Application()
        self.app.router.add_get(settings.ws_path, WebSocketEndpoint(self.node).handle)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        if STATIC_DIR.is_dir():
            self.app.router.add_get("/", self._index)
            self.app.router.add_static("/static/", STATIC_DIR)
        self._runner: web.AppRunner | None = None
        self._tcp = TcpListener(self.node)
        self.http_port = 0
        self.stomp_port = 0

    async def start(self) -> None:
        await self.node.start()
        self.node.chat = await build_chat(
            self.settings, self.node.relay, self.node.access, self.app
        )
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else self.settings.http_port
        if self.settings.stomp_port:
            self.stomp_port = await self._tcp.start(
                self.settings.stomp_host, self.settings.stomp_port
            )
        log.info(
            "gateway node %s listening: ws://%s:%d%s, stomp %s",
            self.settings.node_id,
            self.settings.http_host,
            self.http_port,
            self.settings.ws_path,
            f"tcp://{self.settings.stomp_host}:{self.stomp_port}" if self.stomp_port else "off",
        )

    async def stop(self, reason: str = "server shutting down") -> None:
        await self._tcp.stop()
        await self.node.stop(reason)
        if self.node.chat is not None:
            await self.node.chat.close()
        await self.node.access.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.settings.node_id})

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.node.ready:
            return web.json_response({"ready": True})
        reason = "draining" if self.node.draining else "broker unreachable"
        return web.json_response({"ready": False, "reason": reason}, status=503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")


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
