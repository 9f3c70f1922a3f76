"""rabbitmq/rabbitmq.conf and rabbitmq/enabled_plugins are files RabbitMQ boots with.

A private node (never the shared broker) starts with both, its ports moved to free ones so
it runs beside the shared broker; then the management API and the Prometheus endpoint that
deploy/grafana/ reads answer.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.broker import PrivateBroker, available
from tests.ops.test_dashboard import exposed, queried
from tests.support.gateway_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"management.tcp.port", "prometheus.tcp.port"}

pytestmark = pytest.mark.skipif(not available(), reason="needs rabbitmq-server installed")


def plugins() -> tuple[str, ...]:
    text = (ROOT / "rabbitmq" / "enabled_plugins").read_text()
    match = re.fullmatch(r"\s*\[([a-z_,\s]*)\]\.\s*", text)
    assert match, "enabled_plugins is an Erlang list of atoms ending with a dot"
    return tuple(p.strip() for p in match.group(1).split(",") if p.strip())


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {key: free_port() for key in PORTS}


@pytest.fixture(scope="module")
def node(ports: dict[str, int]) -> Iterator[PrivateBroker]:
    lines = []
    for line in (ROOT / "rabbitmq" / "rabbitmq.conf").read_text().splitlines():
        key = line.partition("=")[0].strip()
        if key == "listeners.tcp.default":
            continue  # the private node's own AMQP port
        lines.append(f"{key} = {ports[key]}" if key in PORTS else line)
    broker = PrivateBroker("\n".join(lines) + "\n", plugins=plugins())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def get(url: str) -> bytes:
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest, from 127.0.0.1
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body


def test_rabbitmq_boots_with_the_files_and_serves_prometheus(
    node: PrivateBroker, ports: dict[str, int]
) -> None:
    assert "rabbitmq_management" in plugins()
    metrics = get(f"http://127.0.0.1:{ports['prometheus.tcp.port']}/metrics").decode()
    assert "rabbitmq_build_info" in metrics
    wanted = queried("rabbitmq_")  # the Grafana dashboard's RabbitMQ panel
    assert wanted
    assert wanted - exposed(metrics) == set()
    overview = get(f"http://127.0.0.1:{ports['management.tcp.port']}/api/overview")
    assert b'"rabbitmq_version"' in overview
