"""A service of ours run as a real subprocess for a test: start, wait until its HTTP check
answers 200, stop with SIGTERM (drain) or kill with SIGKILL (crash), read its log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ManagedProcess:
    """Lifecycle shared by gateway and worker subprocesses (subclasses say what to run)."""

    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def spawn(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        check_url: str,
        timeout: float,
        what: str,
    ) -> None:
        """Start ``args``; return once ``check_url`` answers 200 (else kill it and raise)."""
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(args),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        try:
            self.wait_ok(check_url, timeout, what)
        except BaseException:
            self.kill()  # a process that never got ready must not outlive the test
            raise

    def wait_ok(self, url: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{what} exited early:\n{self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready in {timeout} s ({url}):\n{self.logs()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful drain), SIGKILL after ``timeout``; the exit code."""
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
        """SIGKILL: no drain, like a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def logs(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-8000:]
