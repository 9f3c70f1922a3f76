"""Private Redis servers for tests and benchmarks: a lone ``redis-server``, a Sentinel set
(primary, replica, sentinel) and a small Redis Cluster (three masters).

Every server listens on 127.0.0.1 on ports from `tests.support.ports` (never the shared
6379), keeps nothing on disk (``--save "" --appendonly no``: a restart comes back empty, like
the shared service), writes into its own temporary directory and is killed by ``close()``.
Sentinels run as ``redis-server <conf> --sentinel`` (no separate package needed).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from tests.support.ports import free_port

SERVICE = "stompgate"
"""The Sentinel service name of `PrivateSentinel`."""


def _server_binary() -> str:
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found: install Redis (make services)")
    return server


def _wait(check: object, what: str, timeout: float) -> None:
    """Until ``check()`` is true (exceptions of redis-py count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """One ``redis-server`` process on its own port and directory; ``start``/``stop``/
    ``kill``/``restart`` act on the process, the port and directory stay."""

    def __init__(self, directory: Path, *args: str, port: int | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def command(self) -> list[str]:
        return [
            _server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.dir / "redis.log"),
            *self.args,
        ]

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"redis-server on {self.port} already runs")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        client = self.client()
        try:
            _wait(client.ping, f"redis-server on {self.port}", timeout)
        finally:
            client.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash (nothing kept: no persistence)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, SIGKILL after ``timeout``."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        """Kill, stay down ``down_for`` seconds, start again on the same port (empty)."""
        self.kill()
        time.sleep(down_for)
        self.start()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class _Group:
    """Servers under one temporary directory, all killed and the directory removed on
    ``close()`` (also as a context manager)."""

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"stompgate-{prefix}-"))
        self.servers: list[RedisServer] = []

    def _server(self, name: str, *args: str, port: int | None = None) -> RedisServer:
        server = RedisServer(self.root / name, *args, port=port)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> _Group:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PrivateRedis(_Group):
    """A lone ``redis-server``, started; ``client`` a client of it, ``dir`` a directory
    for the caller's files (removed with the server's)."""

    def __init__(self) -> None:
        super().__init__("redis")
        self.dir = self.root
        self.server = self._server("server")
        try:
            self.server.start()
        except BaseException:
            self.close()
            raise
        self.client = self.server.client()

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        super().close()

    def __enter__(self) -> PrivateRedis:
        return self


class PrivateSentinel(_Group):
    """A primary, a replica of it and one sentinel watching them (quorum 1), started and
    in sync. ``url`` is the gateway's ``redis+sentinel://`` URL for them."""

    def __init__(self, down_after_ms: int = 1000) -> None:
        super().__init__("sentinel")
        try:
            self.primary = self._server("primary", "--repl-diskless-sync-delay", "0")
            self.primary.start()
            self.replica = self._server(
                "replica", "--replicaof", "127.0.0.1", str(self.primary.port)
            )
            self.replica.start()
            self.sentinel_port = free_port()
            conf = self.root / "sentinel.conf"
            conf.write_text(
                f"port {self.sentinel_port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.root}\n"
                f"logfile {self.root / 'sentinel.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1\n"
                f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinel = _SentinelServer(conf, self.sentinel_port)
            self.sentinel.start()
            self.wait_replicated()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def master_port(self) -> int:
        """The port the sentinel names as the primary now."""
        client = redis.Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=5)
        try:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
            assert isinstance(address, tuple), address
            return int(address[1])
        finally:
            client.close()

    def wait_replicated(self, timeout: float = 15.0) -> None:
        client = self.replica.client()
        try:
            _wait(
                lambda: client.info("replication").get("master_link_status") == "up",
                "the replica's link to the primary",
                timeout,
            )
        finally:
            client.close()
        _wait(lambda: self.master_port() == self.primary.port, "the sentinel", timeout)

    def close(self) -> None:
        if hasattr(self, "sentinel"):
            self.sentinel.kill()
        super().close()

    def __enter__(self) -> PrivateSentinel:
        return self


class _SentinelServer(RedisServer):
    def __init__(self, conf: Path, port: int) -> None:
        super().__init__(conf.parent, port=port)
        self.conf = conf

    def command(self) -> list[str]:
        return [_server_binary(), str(self.conf), "--sentinel"]


class PrivateCluster(_Group):
    """A Redis Cluster of ``masters`` masters (no replicas), every slot covered, started.
    Bus ports come from `tests.support.ports` too (not port + 10000). ``url`` is the
    gateway's ``redis+cluster://`` URL for it."""

    def __init__(self, masters: int = 3) -> None:
        super().__init__("cluster")
        try:
            for n in range(masters):
                self._server(
                    f"node{n}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-port",
                    str(free_port()),
                ).start()
            cli = shutil.which("redis-cli")
            if cli is None:
                raise RuntimeError("redis-cli not found: install Redis (make services)")
            subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{s.port}" for s in self.servers),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=60,
            )
            for server in self.servers:
                client = server.client()
                try:
                    _wait(
                        lambda c=client: c.cluster("info")["cluster_state"] == "ok",
                        f"cluster node {server.port}",
                        30,
                    )
                finally:
                    client.close()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def __enter__(self) -> PrivateCluster:
        return self
