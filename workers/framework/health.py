"""The worker's HTTP side: GET /healthz (200 when consuming, else 503) and GET /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    def __init__(
        self, probe: HealthProbe, registry: CollectorRegistry, *, host: str, port: int
    ) -> None:
        self.probe = probe
        self.registry = registry
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:  # the bound port, when 0 asked for any free one
            self.port = int(address[1])
            break

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, details = self.probe()
        return web.json_response(
            {"status": "ok" if ok else "unavailable", **details}, status=200 if ok else 503
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
