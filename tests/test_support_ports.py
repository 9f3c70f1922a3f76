"""Test servers' ports (tests/support/ports.py): no two concurrent runs get the same one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.ports import PORTS, free_port

ROOT = Path(__file__).resolve().parent.parent
PER_RUN = 600
"""Ports each simulated run takes: picked at random from 12,000, two runs would share ~30."""

_RUN = f"""
import sys
from tests.support.ports import free_port
print(" ".join(str(free_port()) for _ in range({PER_RUN})), flush=True)
sys.stdin.read()  # hold the ports (as a run does while its servers live) until told
"""


def test_concurrent_runs_never_get_the_same_port() -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUN],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        taken = []
        for run in runs:
            assert run.stdout is not None
            taken.append([int(p) for p in run.stdout.readline().split()])
        mine = [free_port() for _ in range(PER_RUN)]  # this run, meanwhile
    finally:
        for run in runs:
            run.communicate("")
    every = [*taken[0], *taken[1], *mine]
    assert len(every) == 3 * PER_RUN
    assert len(set(every)) == len(every)
    assert all(port in PORTS for port in every)
    assert max(every) < 32768  # below the kernel's ephemeral range
