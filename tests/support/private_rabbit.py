"""A private RabbitMQ node for tests that stop, kill or cluster a broker.

The shared broker on 5672 is never touched: each :class:`PrivateRabbit` is its own Erlang node
(``<name>@localhost``) with its own AMQP and distribution ports (from ``tests/support/ports``),
its own data, log and plugin directories under the test's tmp dir, and no plugins. Nodes made
by one :class:`RabbitHome` share an Erlang cookie (its ``HOME``), so they can be clustered.

- :meth:`PrivateRabbit.start` boots the node (and, later, boots it again on the same data
  directory) and returns once its AMQP port accepts connections.
- :meth:`PrivateRabbit.stop` stops it gracefully (SIGTERM: RabbitMQ's orderly shutdown).
- :meth:`PrivateRabbit.kill` SIGKILLs its whole process group (the beam and its helpers),
  like a crash.
- :meth:`PrivateRabbit.join` makes it a member of another node's cluster.

Every node started is killed when its :class:`RabbitHome` closes and, as a last resort, when
the test process exits (``atexit``), so no beam outlives a failed test. Boot takes about 9 s
on a loaded two-core machine (rabbitmq-server 3.10 with only its core applications on the
plugin path; about 12 s with the full plugin directory): keep boots per module few.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

__all__ = ["PrivateRabbit", "RabbitHome", "rabbit_available"]

SERVER_HOME = Path("/usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8")
SBIN = SERVER_HOME / "sbin"
PLUGINS = SERVER_HOME / "plugins"
BOOT_TIMEOUT = 90.0

_RUNNING: set[int] = set()  # process group ids of nodes started and not yet reaped


@atexit.register
def _kill_strays() -> None:
    for pgid in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    _RUNNING.clear()


def rabbit_available() -> bool:
    """rabbitmq-server (3.10, Debian's package) is installed where this module looks."""
    return (SBIN / "rabbitmq-server").exists()


def _core_plugins(target: Path) -> Path:
    """A plugin directory with RabbitMQ's core applications only (links): no plugin code to
    scan at boot (it halves the feature-flag discovery)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in PLUGINS.iterdir():
        name = entry.name
        plugin = name.startswith(("rabbitmq_", "amqp10_")) and not name.startswith(
            "rabbitmq_prelaunch"
        )
        if entry.is_dir() and not plugin:
            link = target / name
            if not link.exists():
                link.symlink_to(entry)
    return target


@dataclass
class RabbitHome:
    """A directory for private nodes that share one Erlang cookie (a cluster can form)."""

    root: Path
    nodes: list[PrivateRabbit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = self.root / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        self.plugins = _core_plugins(self.root / "plugins")

    def node(self, name: str) -> PrivateRabbit:
        """A new (not yet started) node; its name gets a random suffix (epmd is shared)."""
        node = PrivateRabbit(self, f"{name}-{secrets.token_hex(4)}")
        self.nodes.append(node)
        return node

    def close(self) -> None:
        """Kill every node of this home that still runs."""
        for node in self.nodes:
            node.kill()

    def processes(self) -> list[str]:
        """Command lines of running processes that belong to this home's nodes (their data
        directories are on the beam's command line): none after :meth:`close`."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            text = raw.replace(b"\0", b" ").decode(errors="replace")
            if str(self.root) in text and state != "Z":
                found.append(f"{entry.name}: {text[:200]}")
        return found


@dataclass
class PrivateRabbit:
    home: RabbitHome
    name: str
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    boots: list[float] = field(default_factory=list)
    """Seconds each start took, until the AMQP port accepted a connection."""

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def base(self) -> Path:
        return self.home.root / self.name

    def amqp_url(self, vhost: str = "/", **query: str) -> str:
        url = f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{urllib.parse.quote(vhost, '')}"
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _env(self) -> dict[str, str]:
        base = self.base
        return {
            **os.environ,
            "HOME": str(self.home.root),  # the shared .erlang.cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_DIR": str(self.home.plugins),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        }

    def start(self, timeout: float = BOOT_TIMEOUT) -> float:
        """Boot the node (again, on the same data directory, after a stop or a kill);
        return the seconds until its AMQP port accepted a connection."""
        if self.running:
            raise RuntimeError(f"{self.node} already runs")
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users = none\n"
            # A node that boots alone must not wait 5 minutes for its old cluster peers.
            "mnesia_table_loading_retry_limit = 3\n"
            "mnesia_table_loading_retry_timeout = 5000\n"
        )
        started = time.monotonic()
        with (base / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(SBIN / "rabbitmq-server")],
                env=self._env(),
                cwd=base,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: kill() takes the beam too
            )
        _RUNNING.add(self.process.pid)
        try:
            self._wait_port(started + timeout)
        except BaseException:
            self.kill()
            raise
        took = time.monotonic() - started
        self.boots.append(took)
        return took

    def _wait_port(self, deadline: float) -> None:
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.node} exited while booting:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} did not boot:\n{self.logs()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop (SIGTERM: RabbitMQ shuts down in order); SIGKILL after ``timeout``.

        The signal goes to ``rabbitmq-server`` (a shell), which passes it to the beam and
        waits for it to finish."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the node's whole process group (beam.smp and its helpers): a crash."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _RUNNING.discard(process.pid)
        self._wait_gone()

    def _wait_gone(self, timeout: float = 10.0) -> None:
        """Until the AMQP port is free again (the beam is reaped by init, not by us)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=0.5):
                    pass
            except OSError:
                return
            time.sleep(0.1)

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        """``rabbitmqctl -n <node> args...``; its output (raises on a non-zero exit)."""
        done = subprocess.run(
            [str(SBIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        out = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node} failed:\n{out}")
        return out

    def add_vhost(self, prefix: str = "chaos") -> str:
        """A new vhost (cluster-wide) that guest may use fully; its name."""
        vhost = f"{prefix}-{secrets.token_hex(4)}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return vhost

    def join(self, other: PrivateRabbit) -> None:
        """Make this (running, fresh) node a disc member of ``other``'s cluster."""
        self.ctl("stop_app")
        self.ctl("reset")
        self.ctl("join_cluster", other.node)
        self.ctl("start_app")
        self._wait_port(time.monotonic() + BOOT_TIMEOUT)

    def logs(self) -> str:
        parts: list[str] = []
        for path in (self.base / "server.log", self.base / "log" / f"{self.node}.log"):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)
