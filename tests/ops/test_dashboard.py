"""deploy/grafana/stompgate.json queries only metrics that exist, and the favicon is served.

The gateway's names are read from a running node's /metrics, the workers' from the persist
worker's registry (what its /metrics serves); RabbitMQ's are checked against a private node's
Prometheus endpoint in test_rabbitmq_config.py.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import stomp_client
from workers.persist import build_app
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "stompgate.json"
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def queried(prefix: str) -> set[str]:
    """Metric names starting with ``prefix`` in the dashboard's queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return {name for expr in exprs for name in re.findall(rf"\b{prefix}[a-z0-9_]+", expr)}


def exposed(text: str) -> set[str]:
    """Every series name a Prometheus text exposition offers, families without samples too."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            names.update(name + suffix for suffix in SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def node(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(amqp_url=amqp_url, node_id="ops-dashboard")
    gateway.start(tmp_path_factory.mktemp("dashboard-logs"))
    try:
        yield gateway
    finally:
        gateway.stop()


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def test_every_gateway_metric_the_dashboard_queries_exists(node: GatewayProcess) -> None:
    with stomp_client(node.stomp_port) as client:  # some traffic, so counters have series
        client.send("/topic/ops-dashboard", "x")
    _, body = fetch(node.http_url + "/metrics")
    wanted = queried("stompgate_") - queried("stompgate_worker_")
    assert len(wanted) >= 10
    assert wanted - exposed(body.decode()) == set()


def test_every_worker_metric_the_dashboard_queries_exists() -> None:
    app = build_app(WorkerSettings(store_url="sqlite://:memory:", metrics_port=None))
    wanted = queried("stompgate_worker_")
    assert len(wanted) >= 5
    assert wanted - exposed(generate_latest(app.metrics.registry).decode()) == set()


def test_the_favicon_is_served(node: GatewayProcess) -> None:
    content_type, body = fetch(node.http_url + "/favicon.ico")
    assert content_type.startswith("image/svg+xml")
    assert body.startswith(b"<svg")
    assert b"</svg>" in body
    assert fetch(node.http_url + "/static/favicon.svg")[1] == body
