"""Run real gateway processes (``python -m gateway``) on free ports for end-to-end tests."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.namespace import share_for_process
from tests.support.ports import free_port
from tests.support.process import ManagedProcess

__all__ = ["DEV_USERS", "WS_IMPLS", "GatewayProcess", "free_port", "on_ws_impl"]

DEV_USERS = "guest:guest,alice:alice,bob:bob"
#: The WebSocket paths (``--ws-impl``); WebSocket tests run over each.
WS_IMPLS = ("lean", "aiohttp")


@dataclass
class GatewayProcess(ManagedProcess):
    amqp_url: str
    node_id: str
    http_port: int = field(default_factory=free_port)
    stomp_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``"dev"`` (logins guest, alice, bob) or ``"jwt"`` (configure it through ``env``,
    #: e.g. ``STOMPGATE_JWT_ALGORITHMS``/``STOMPGATE_JWT_KEY``; see docs/security.md).
    auth: str = "dev"
    #: ``--ws-impl``: what serves ``/ws`` (``lean`` or ``aiohttp``).
    ws_impl: str = "lean"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, log_dir: Path, timeout: float = 30.0) -> None:
        args = [
            sys.executable,
            "-m",
            "gateway",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(self.http_port),
            "--stomp-host",
            "127.0.0.1",
            "--stomp-port",
            str(self.stomp_port),
            "--amqp-url",
            self.amqp_url,
            "--node-id",
            self.node_id,
            "--auth",
            self.auth,
            *(("--dev-users", DEV_USERS) if self.auth == "dev" else ()),
            "--ws-impl",
            self.ws_impl,
            *self.extra_args,
        ]
        share_for_process(self.env, args)
        self.spawn(
            args,
            self.env,
            log_dir / f"{self.node_id}.log",
            self.http_url + "/readyz",
            timeout,
            f"gateway {self.node_id}",
        )

    def twin(self, ws_impl: str) -> GatewayProcess:
        """A node configured as this one (same vhost, environment and flags), on its own
        ports, whose WebSockets are served by ``ws_impl``; not started."""
        return GatewayProcess(
            amqp_url=self.amqp_url,
            node_id=f"{self.node_id}-{ws_impl}",
            extra_args=self.extra_args,
            env=self.env,
            auth=self.auth,
            ws_impl=ws_impl,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_ok(self.http_url + "/readyz", timeout, f"gateway {self.node_id}")


@contextlib.contextmanager
def on_ws_impl(node: GatewayProcess, ws_impl: str, log_dir: Path) -> Iterator[GatewayProcess]:
    """``node`` if its WebSockets are served by ``ws_impl``, else a started twin of it that
    is stopped afterwards."""
    if node.ws_impl == ws_impl:
        yield node
        return
    other = node.twin(ws_impl)
    other.start(log_dir)
    try:
        yield other
    finally:
        other.stop()
