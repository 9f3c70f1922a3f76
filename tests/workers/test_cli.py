"""Settings from the environment, the worker registry and `python -m workers`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from store import SQLiteStore
from tests.support.gateway_proc import free_port
from workers.__main__ import main
from workers.framework import WorkerApp
from workers.registry import UnknownWorkerError, resolve
from workers.settings import WorkerSettings

from .amqp import channel
from .chat import chat_event, publish_events


def test_settings_defaults() -> None:
    s = WorkerSettings.from_env({})
    assert s == WorkerSettings()
    assert s.store_url == "sqlite:///var/stompgate.db"
    assert s.metrics_port == 9108
    assert s.prefetch is None


def test_settings_from_env() -> None:
    s = WorkerSettings.from_env(
        {
            "STOMPGATE_AMQP_URL": "amqp://u:p@h:5673/v",
            "STOMPGATE_AMQP_HEARTBEAT": "5",
            "STOMPGATE_STORE": "mongodb://m/chat",
            "STOMPGATE_WORKER_METRICS_PORT": "off",
            "STOMPGATE_WORKER_PREFETCH": "64",
            "STOMPGATE_WORKER_CONCURRENCY": "4",
            "STOMPGATE_WORKER_DRAIN_TIMEOUT": "2.5",
            "STOMPGATE_PERSIST_BATCH_SIZE": "100",
            "STOMPGATE_PERSIST_BATCH_WAIT_MS": "20",
            "STOMPGATE_LOG_LEVEL": "debug",
        }
    )
    assert s == WorkerSettings(
        amqp_url="amqp://u:p@h:5673/v",
        amqp_heartbeat=5,
        store_url="mongodb://m/chat",
        metrics_port=None,
        prefetch=64,
        concurrency=4,
        drain_timeout=2.5,
        persist_batch_size=100,
        persist_batch_wait=0.02,
        log_level="DEBUG",
    )
    assert s.broker_url == "amqp://u:p@h:5673/v?heartbeat=5"


def test_the_amqp_heartbeat_is_given_once() -> None:
    assert WorkerSettings().broker_url == "amqp://guest:guest@127.0.0.1:5672/?heartbeat=60"
    url = "amqp://h/?heartbeat=9"
    assert WorkerSettings.from_env({"STOMPGATE_AMQP_URL": url, "STOMPGATE_AMQP_HEARTBEAT": "9"})
    with pytest.raises(ValueError, match="heartbeat=9 and STOMPGATE_AMQP_HEARTBEAT 60: give"):
        WorkerSettings.from_env({"STOMPGATE_AMQP_URL": url})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_METRICS_PORT", "http"),
        ("WORKER_METRICS_PORT", "70000"),
        ("WORKER_PREFETCH", "0"),
        ("AMQP_HEARTBEAT", "often"),
        ("AMQP_HEARTBEAT", "-2"),
        ("WORKER_DRAIN_TIMEOUT", "-1"),
        ("PERSIST_BATCH_WAIT_MS", "soon"),
    ],
)
def test_settings_reject_bad_values(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        WorkerSettings.from_env({f"STOMPGATE_{name}": value})


def test_settings_are_frozen() -> None:
    s = WorkerSettings()
    with pytest.raises(AttributeError):
        s.amqp_url = "x"  # type: ignore[misc]


def test_resolve_builtin_persist() -> None:
    settings = WorkerSettings(amqp_url="amqp://x/", prefetch=42, metrics_port=None)
    app = resolve("persist", settings)
    assert app.name == "persist"
    assert app.amqp_url == "amqp://x/?heartbeat=60"  # the settings' heart-beat, in the URL
    assert app.prefetch == 42
    [spec] = app.consumers
    assert (spec.queue, spec.patterns, spec.exchange) == (
        "stompgate.persist",
        ("room.*",),
        "amq.topic",
    )
    assert spec.batch is not None
    assert (spec.batch.max_size, spec.batch.max_wait) == (500, 0.05)
    assert spec.retry.max_attempts is None
    assert dict(spec.only_headers) == {"event-type": "message"}


def test_resolve_team_app_and_factory() -> None:
    settings = WorkerSettings(amqp_url="amqp://team/", prefetch=5)
    app = resolve("tests.workers.team_worker:app", settings)
    assert isinstance(app, WorkerApp)
    assert app.name == "team-audit"
    assert app.amqp_url == "amqp://team/?heartbeat=60"
    built = resolve("tests.workers.team_worker:build", settings)
    assert built.name == "team-built"
    assert built.prefetch == 7  # set in code: the code wins over the environment


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "tests.workers.team_worker:missing",
        "tests.workers.team_worker:not_an_app",
        "no_such_module_xyz:app",
        ":app",
    ],
)
def test_resolve_errors(name: str) -> None:
    with pytest.raises(UnknownWorkerError):
        resolve(name, WorkerSettings())


def test_main_rejects_unknown_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "unknown worker 'nope'" in capsys.readouterr().err


def test_resolve_builtin_translate() -> None:
    settings = WorkerSettings(amqp_url="amqp://x/", metrics_port=None)
    app = resolve("translate", settings)
    assert app.name == "translate"
    [spec] = app.consumers
    assert (spec.queue, spec.patterns, spec.exchange) == (
        "stompgate.translate",
        ("room.*",),
        "amq.topic",
    )
    assert spec.batch is None
    assert spec.retry.backoff == (1.0, 5.0, 30.0, 60.0, 300.0)
    assert spec.retry.max_attempts == 293  # a day of retries
    assert dict(spec.only_headers) == {"event-type": "message"}


def test_main_names_a_misspelt_translation_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOMPGATE_TRANSLATE_PROVIDER", "babelfish")
    assert main(["translate"]) == 2
    assert "STOMPGATE_TRANSLATE_PROVIDER must be one of" in capsys.readouterr().err


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_python_m_workers_persist_runs_and_drains_on_sigterm(
    vhost_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "stompgate.db"
    port = free_port()
    env = {
        **os.environ,
        "STOMPGATE_AMQP_URL": vhost_url,
        "STOMPGATE_STORE": f"sqlite:///{db}",
        "STOMPGATE_WORKER_METRICS_PORT": str(port),
        "STOMPGATE_WORKER_METRICS_HOST": "127.0.0.1",
        "STOMPGATE_PERSIST_BATCH_WAIT_MS": "10",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        "persist",
        env=env,
        cwd=str(Path(__file__).parents[2]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
            except OSError:
                status = 0
            if status == 200:
                break
            assert proc.returncode is None, "worker exited early"
            assert time.monotonic() < deadline, "worker never became healthy"
            await asyncio.sleep(0.1)
        async with channel(vhost_url) as ch:
            await publish_events(ch, [("cli", chat_event(i, "cli")) for i in range(1, 101)])
        store = SQLiteStore(str(db))
        await store.open()
        try:
            while await store.count("cli") < 100:
                assert time.monotonic() < deadline + 10, "messages not stored"
                await asyncio.sleep(0.05)
        finally:
            await store.close()
        status, text = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'stompgate_worker_messages_handled_total{queue="stompgate.persist"' in text
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stdout is not None
    output = (await proc.stdout.read()).decode()
    assert "drained" in output
