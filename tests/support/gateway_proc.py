"""Run real gateway processes (``python -m gateway``) on free ports for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_USERS = "guest:guest,alice:alice,bob:bob"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    amqp_url: str
    node_id: str
    http_port: int = field(default_factory=free_port)
    stomp_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``"dev"`` (logins guest, alice, bob) or ``"jwt"`` (configure it through ``env``,
    #: e.g. ``STOMPGATE_JWT_ALGORITHMS``/``STOMPGATE_JWT_KEY``; see docs/security.md).
    auth: str = "dev"
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

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
        self.log_path = log_dir / f"{self.node_id}.log"
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()  # a node that never got ready must not outlive the test
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gateway {self.node_id} exited early:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.http_url + "/readyz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gateway {self.node_id} not ready in {timeout} s:\n{self.logs()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def logs(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-8000:]


@contextlib.contextmanager
def running_gateway(
    amqp_url: str, node_id: str, log_dir: Path, *extra_args: str
) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(amqp_url=amqp_url, node_id=node_id, extra_args=extra_args)
    gateway.start(log_dir)
    try:
        yield gateway
    finally:
        gateway.stop()
