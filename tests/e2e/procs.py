"""Helpers for end-to-end tests: the persist worker as a subprocess, HTTP history reads, the
SQLite store read directly, chat posts over stomp.py."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.gateway_proc import free_port
from tests.support.namespace import share_for_process
from tests.support.process import ManagedProcess


@dataclass
class WorkerProcess(ManagedProcess):
    """``python -m workers <worker>`` (the persist worker unless told) with its health server
    on a free port."""

    amqp_url: str
    store_url: str
    name: str = "persist"
    metrics_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    worker: str = "persist"

    def start(self, log_dir: Path, timeout: float = 30.0) -> None:
        env = {
            "STOMPGATE_AMQP_URL": self.amqp_url,
            "STOMPGATE_STORE": self.store_url,
            "STOMPGATE_WORKER_METRICS_HOST": "127.0.0.1",
            "STOMPGATE_WORKER_METRICS_PORT": str(self.metrics_port),
            **self.env,
        }
        if self.worker == "persist":
            share_for_process(env)
        self.spawn(
            [sys.executable, "-m", "workers", self.worker],
            env,
            log_dir / f"worker-{self.name}.log",
            f"http://127.0.0.1:{self.metrics_port}/healthz",
            timeout,
            f"worker {self.name}",
        )

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the worker's /metrics (0 when it has none yet)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            name_part, _, label_part = series.partition("{")
            found = ",".join(sorted(label_part.rstrip("}").split(","))) if label_part else ""
            if name_part == name and found == wanted:
                return float(value)
        return 0.0

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until /healthz says it is consuming (its queue exists and is bound)."""
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        self.wait_ok(url, timeout, f"worker {self.name}")


# -- the store, read directly ------------------------------------------------------------------


def store_rows(path: Path, room: str | None = None) -> list[tuple[int, str, str, str]]:
    """(id, room, sender, client_id) of every stored message (of ``room``), by id."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        sql = "SELECT id, room, sender, client_id FROM messages"
        params: tuple[str, ...] = ()
        if room is not None:
            sql += " WHERE room = ?"
            params = (room,)
        try:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        except sqlite3.OperationalError as exc:  # the worker has not created the table yet
            if "no such table" in str(exc):
                return []
            raise
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]
    finally:
        conn.close()


def wait_stored(path: Path, count: int, timeout: float = 30.0, room: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = len(store_rows(path, room))
        if got >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{got} of {count} message(s) stored after {timeout} s")
        time.sleep(0.1)


# -- HTTP ---------------------------------------------------------------------------------------


def basic(login: str, passcode: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{passcode}".encode()).decode()


def http_get(
    url: str, *, auth: str | None = basic("alice", "alice"), timeout: float = 10.0
) -> tuple[int, str, Any]:
    """(status, reason, parsed JSON body or None)."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, response.reason, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return exc.code, exc.reason, body


def history(
    base_url: str, room: str, *, auth: str | None = basic("alice", "alice"), **query: str | int
) -> dict[str, Any]:
    qs = urllib.parse.urlencode({k: str(v) for k, v in query.items()})
    status, reason, body = http_get(f"{base_url}/api/rooms/{room}/messages?{qs}", auth=auth)
    assert status == 200, (status, reason, body)
    assert isinstance(body, dict)
    return body


def history_after(base_url: str, room: str, after: int, *, limit: int = 200) -> list[int]:
    """Every message id above ``after``, paging forward with ``next_after``."""
    ids: list[int] = []
    cursor = after
    while True:
        page = history(base_url, room, after=cursor, limit=limit)
        ids.extend(int(m["id"]) for m in page["messages"])
        if page["next_after"] is None:
            return ids
        cursor = int(page["next_after"])


# -- chat posts -----------------------------------------------------------------------------------


def post_body(text: str, client_id: str | None = None, **extra: Any) -> str:
    return json.dumps({"client_id": client_id or uuid.uuid4().hex, "text": text, **extra})


def room_name(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
