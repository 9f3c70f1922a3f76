"""Run real gateway processes (``python -m gateway``) on free ports for end-to-end tests."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.namespace import share_for_process
from tests.support.ports import free_port
from tests.support.process import ManagedProcess

__all__ = ["DEV_USERS", "GatewayProcess", "free_port"]

DEV_USERS = "guest:guest,alice:alice,bob:bob"


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

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_ok(self.http_url + "/readyz", timeout, f"gateway {self.node_id}")
