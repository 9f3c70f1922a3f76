"""A private apertium-apy for the tests: started on a free port with the installed pairs,
stopped (with the translation pipelines it spawned) afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.support.gateway_proc import free_port
from tests.support.process import ManagedProcess

MODES = Path("/usr/share/apertium/modes")
LANG_NAMES = Path("/usr/share/apertium-apy/langNames.db")
PACKAGES = "apertium apertium-apy apertium-eng-spa"


class ApertiumProcess(ManagedProcess):
    def __init__(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: Path, timeout: float = 60.0) -> None:
        exe = shutil.which("apertium-apy")
        if exe is None or not (MODES / "eng-spa.mode").exists():
            raise RuntimeError(
                f"apertium-apy or the eng-spa pair is not installed: `make install` installs "
                f"the Debian packages ({PACKAGES})"
            )
        args = [exe, "--port", str(self.port)]
        if LANG_NAMES.exists():
            args += ["--lang-names", str(LANG_NAMES)]
        self.log_path = log_path
        with log_path.open("ab") as log:
            # its own session: apertium-apy starts one pipeline of processes per pair, and
            # stop() ends the whole group
            self.process = subprocess.Popen(
                [*args, str(MODES)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                start_new_session=True,
            )
        try:
            self.wait_ok(f"{self.url}/listPairs", timeout, "apertium-apy")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        group = self.process.pid  # the session leader's pid is the group id
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        code = self.process.returncode
        self.process = None
        return code
