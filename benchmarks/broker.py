"""A private, throw-away RabbitMQ node for the benchmark (Web-STOMP plugin only).

Why not the shared broker: a RabbitMQ started with the default ``ulimit -n`` of 1024 counts
sockets against 90 % of it (832) and its Erlang VM cannot poll a descriptor above 1023 at
all (``check_io`` ``max_fds`` is fixed at boot), so it stalls for about a minute per batch
of connections past ~830, which makes 1,000-5,000 Web-STOMP clients impossible. It is also
shared with whatever tests run meanwhile, which shows up as beam.smp CPU. A private node
started with the benchmark's raised open-files limit has neither problem, and is gone after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.gateway_proc import free_port  # below the ephemeral range

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def available() -> bool:
    return RABBITMQ_SERVER.exists() or shutil.which("rabbitmq-server") is not None


class PrivateBroker:
    """``rabbitmq-server`` as a child, in a temporary directory, on free ports."""

    def __init__(
        self,
        extra_config: str = "",
        plugins: tuple[str, ...] = ("rabbitmq_web_stomp",),
        *,
        configure_stomp: bool = True,
    ) -> None:
        """``extra_config``: more ``rabbitmq.conf`` lines (tests add a TLS listener);
        ``plugins``: those enabled at boot (none: as a fresh install has it);
        ``configure_stomp=False`` leaves the STOMP listener at RabbitMQ's default, 61613."""
        self.extra_config = extra_config
        self.plugins = plugins
        self.configure_stomp = configure_stomp
        self.dir = Path(tempfile.mkdtemp(prefix="stompgate-bench-rmq-"))
        self.amqp_port = free_port()
        self.web_stomp_port = free_port()
        self.stomp_port = free_port()
        self.dist_port = free_port()
        self.node = f"sgbench{os.getpid()}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0  # beam.smp

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def web_stomp_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_stomp_port}/ws"

    def start(self, timeout: float = 90.0) -> None:
        d = self.dir
        (d / "env.conf").write_text("")
        (d / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        stomp = f"stomp.listeners.tcp.1 = 127.0.0.1:{self.stomp_port}\n"
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"web_stomp.tcp.port = {self.web_stomp_port}\n"
            "web_stomp.tcp.ip = 127.0.0.1\n"
            + (stomp if self.configure_stomp else "")
            + self.extra_config
        )
        env = self.env()
        exe = str(RABBITMQ_SERVER) if RABBITMQ_SERVER.exists() else "rabbitmq-server"
        with (d / "stdout.log").open("ab") as log:
            self.process = subprocess.Popen(
                [exe], cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        pid_file = d / "pid"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited:\n{self.logs()}")
            if (
                pid_file.exists()
                and pid_file.read_text().strip().isdigit()
                and port_open(self.amqp_port)
                and ("rabbitmq_web_stomp" not in self.plugins or port_open(self.web_stomp_port))
            ):
                self.pid = int(pid_file.read_text().strip())
                return
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"private RabbitMQ not up in {timeout} s:\n{self.logs()}")

    def env(self) -> dict[str, str]:
        """The environment of the node, and of ``rabbitmqctl``/``rabbitmq-plugins`` run on it."""
        d = self.dir
        return {
            **os.environ,
            "HOME": str(d),  # its own Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def logs(self) -> str:
        path = self.dir / "stdout.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                if self.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
            self.process = None
        deadline = time.monotonic() + 15
        while self.pid and time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        self.pid = 0
        shutil.rmtree(self.dir, ignore_errors=True)
