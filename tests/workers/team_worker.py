"""A backend team's worker, as the README shows it (used by test_cli.py)."""

from __future__ import annotations

from workers.framework import Delivery, WorkerApp
from workers.settings import WorkerSettings

app = WorkerApp("team-audit")
seen: list[bytes] = []


@app.consumer("room.*", queue="team.audit", max_attempts=3, backoff=(0.1,))
async def audit(msg: Delivery[bytes]) -> None:
    seen.append(msg.body)


def build(settings: WorkerSettings) -> WorkerApp:
    """A factory form: `python -m workers tests.workers.team_worker:build`."""
    other = WorkerApp("team-built", prefetch=7)

    @other.consumer("room.*", queue="team.built")
    async def handle(msg: Delivery[bytes]) -> None:
        pass

    return other


not_an_app = 42
