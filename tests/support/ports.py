"""Free TCP ports for test servers, collision-proof between concurrent test runs.

Ports come from below the kernel's ephemeral range (32768-60999 on Linux by default), so an
outgoing connection can never take one between the check and the server's bind.

Several suites may run at once on one machine (other worktrees, CI jobs, xdist workers), and
a port that is free when checked is not yet bound when a child process starts: two runs that
picked the same port at random would both try to serve on it (or one would talk to the
other's server). So each process claims *blocks* of ports with an exclusive `fcntl.flock` on
a lock file per block in the temp directory, holds it until it exits (the kernel drops it
even on SIGKILL), and hands out the ports of its own blocks only, each one once, skipping a
port something else has bound. No other run uses a port of a block it does not hold.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

PORTS = range(20000, 32000)
"""Ports handed to test servers (below the ephemeral range)."""

BLOCK = 50
"""Ports per claimed block."""

LOCK_DIR = Path(tempfile.gettempdir()) / "stompgate-test-ports"


class _Blocks:
    """The blocks this process holds, and the next port of the newest one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[int] = []  # lock file descriptors, kept open for the process's life
        self._pending: list[int] = []

    def forget(self) -> None:
        """In a forked child: the parent's blocks are the parent's (the child claims its own;
        the inherited descriptors stay open, so the parent keeps its locks)."""
        self._lock = threading.Lock()
        self._held = []
        self._pending = []

    def _claim(self) -> None:
        LOCK_DIR.mkdir(exist_ok=True)
        starts = list(range(PORTS.start, PORTS.stop - BLOCK + 1, BLOCK))
        offset = random.randrange(len(starts))
        for start in starts[offset:] + starts[:offset]:
            fd = os.open(LOCK_DIR / f"{start}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._held.append(fd)
            self._pending = list(range(start, start + BLOCK))
            return
        raise RuntimeError(f"every block of test ports in {PORTS} is held by another run")

    def port(self) -> int:
        with self._lock:
            while True:
                if not self._pending:
                    self._claim()
                port = self._pending.pop(0)
                if _bindable(port):
                    return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_blocks = _Blocks()
os.register_at_fork(after_in_child=_blocks.forget)


def free_port() -> int:
    """A TCP port on 127.0.0.1 for a test server: free now, outside the ephemeral range, and
    handed to no other caller in this run nor in any concurrent run."""
    return _blocks.port()
