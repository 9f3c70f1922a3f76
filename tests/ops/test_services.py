"""`make up` and `make test` set up RabbitMQ apart, each only as far as it needs, and say so.

scripts/ensure-services.sh (`make up`, `make services`) needs RabbitMQ's AMQP and management
API; scripts/ensure-test-plugins.sh (`make test`, `make bench`) adds the STOMP and Web-STOMP
plugins with RabbitMQ's STOMP listener off the gateway's port. Both run here against a
private RabbitMQ node that starts as a fresh install has it (no plugins, the STOMP listener
at its default 61613), the case CI has on a new machine, and never against the shared broker
other test runs use.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.broker import PrivateBroker, available
from tests.support.gateway_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
#: The unwrapped CLI tools: Debian's wrappers run them as the rabbitmq user with its own
#: HOME, so they would reach the shared broker's cookie, not the private node's.
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"

pytestmark = pytest.mark.skipif(
    not available() or not Path(RABBITMQ_BIN, "rabbitmqctl").exists(),
    reason="needs rabbitmq-server installed to start a private node",
)


class Node:
    def __init__(self, broker: PrivateBroker, mgmt_port: int) -> None:
        self.broker = broker
        self.mgmt_port = mgmt_port

    def env(self, **extra: str) -> dict[str, str]:
        b = self.broker
        return {
            **b.env(),
            "PATH": f"{RABBITMQ_BIN}:{os.environ['PATH']}",
            "RABBIT_AMQP_PORT": str(b.amqp_port),
            "RABBIT_MGMT_PORT": str(self.mgmt_port),
            "RABBIT_STOMP_PORT": str(b.stomp_port),
            "RABBIT_WEB_STOMP_PORT": str(b.web_stomp_port),
            **extra,
        }

    def run(self, script: str, **extra: str) -> str:
        """The script's report (stderr); fails the test on a non-zero exit."""
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / script)],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stderr

    def enabled(self, plugin: str) -> bool:
        done = subprocess.run(
            ["rabbitmq-plugins", "-q", "is_enabled", plugin],
            env=self.env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        return done.returncode == 0

    def listeners(self) -> str:
        return subprocess.run(
            ["rabbitmq-diagnostics", "-q", "listeners"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout


@pytest.fixture(scope="module")
def fresh_node() -> Iterator[Node]:
    mgmt_port = free_port()
    broker = PrivateBroker(
        f"management.tcp.port = {mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n",
        plugins=(),
        configure_stomp=False,
    )
    broker.start()
    try:
        yield Node(broker, mgmt_port)
    finally:
        broker.stop()


def test_up_enables_management_only_and_says_so(fresh_node: Node) -> None:
    report = fresh_node.run("ensure-services.sh")
    assert "enabling RabbitMQ's management plugin" in report
    assert "nothing else restarts" in report
    assert fresh_node.enabled("rabbitmq_management")
    assert not fresh_node.enabled("rabbitmq_stomp")  # a test-only plugin: not make up's
    assert not fresh_node.enabled("rabbitmq_web_stomp")
    again = fresh_node.run("ensure-services.sh")
    assert "already up; nothing changed" in again
    assert "enabling" not in again


def test_test_plugins_never_take_the_gateways_port(fresh_node: Node) -> None:
    report = fresh_node.run("ensure-test-plugins.sh")
    port = fresh_node.broker.stomp_port
    assert f"setting RabbitMQ's STOMP listener to 127.0.0.1:{port} before" in report
    assert "enabling RabbitMQ plugins rabbitmq_stomp rabbitmq_web_stomp" in report
    assert "moving" not in report  # set before the plugin started: nothing restarted
    listeners = fresh_node.listeners()
    assert f"port: {port}, protocol: stomp" in listeners
    assert "port: 61613" not in listeners
    again = fresh_node.run("ensure-test-plugins.sh")
    assert "already set up; nothing changed" in again


def test_test_plugins_move_a_listener_elsewhere_and_say_what_restarts(fresh_node: Node) -> None:
    fresh_node.run("ensure-test-plugins.sh")
    new_port = free_port()
    report = fresh_node.run("ensure-test-plugins.sh", RABBIT_STOMP_PORT=str(new_port))
    assert "moving RabbitMQ's STOMP listener" in report
    assert f"to 127.0.0.1:{new_port}" in report
    assert "restarting its rabbitmq_stomp and rabbitmq_web_stomp plugins" in report
    assert f"port: {new_port}, protocol: stomp" in fresh_node.listeners()
