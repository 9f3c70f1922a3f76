"""The real STOMP.js client (@stomp/stompjs 7, Node + ws) against a gateway process."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway_proc import GatewayProcess

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.fixture(scope="module")
def gateway(amqp_url: str, log_dir: Path, ws_impl: str) -> Iterator[GatewayProcess]:
    """One node per WebSocket path (``--ws-impl``): every case runs over both."""
    node = GatewayProcess(amqp_url=amqp_url, node_id=f"gw-js-{ws_impl}", ws_impl=ws_impl)
    node.start(log_dir)
    yield node
    node.stop()


def run_js(scenario: str, url: str, **options: Any) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(JS_DIR / "stompjs_client.mjs"), scenario, url, json.dumps(options)],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=JS_DIR,
    )
    lines = done.stdout.decode().strip().splitlines()
    assert lines, f"no output; stderr: {done.stderr.decode()}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0, result
    return result


def test_stompjs_roundtrip_with_receipts(gateway: GatewayProcess) -> None:
    destination = f"/topic/room.js-{uuid.uuid4().hex[:8]}"
    result = run_js("roundtrip", gateway.ws_url, destination=destination, count=5)
    assert result["connected"]["version"] == "1.2"
    assert result["connected"]["user-name"] == "guest"
    assert [m["body"] for m in result["received"]] == [f"hello {i}" for i in range(5)]
    assert [m["headers"]["x-n"] for m in result["received"]] == ["0", "1", "2", "3", "4"]
    assert result["receipts"] == [f"send-{i}" for i in range(5)]


def test_stompjs_heartbeats_keep_the_session_alive(gateway: GatewayProcess) -> None:
    result = run_js("heartbeat", gateway.ws_url, hold=3000)
    assert result["stillConnected"] is True
    assert result["closes"] == 0
    # the server's floor is 1000,1000 by default; the client asked 500,500: max() of each pair
    assert result["heartBeat"] == "1000,1000"


def test_stompjs_gets_one_second_heart_beats_and_is_cut_when_it_stops(
    gateway: GatewayProcess,
) -> None:
    """Issue 14.5: heartbeatIncoming/Outgoing 1000 get 1 s both ways; a client that stops
    pinging is cut within a few seconds (1 s times the grace, 2.0; it was 20 s)."""
    result = run_js("heartbeatSilent", gateway.ws_url, hold=4000, timeout=40000)
    assert result["heartBeat"] == "1000,1000"
    assert result["stillConnected"] is True
    assert 2 <= result["pongs"] <= 8, result  # about one a second for 4 s
    assert result["error"]["message"] == "Heart-beat timeout", result
    assert result["cutAfterMs"] < 10_000, result


def test_stompjs_reconnects_after_the_node_restarts(
    amqp_url: str, log_dir: Path, ws_impl: str
) -> None:
    node = GatewayProcess(amqp_url=amqp_url, node_id=f"gw-restart-{ws_impl}", ws_impl=ws_impl)
    node.start(log_dir)
    assert NODE is not None
    proc = subprocess.Popen(
        [NODE, str(JS_DIR / "stompjs_client.mjs"), "reconnect", node.ws_url, "{}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=JS_DIR,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first == {"ready": True}
        node.stop()  # SIGTERM: sessions get an ERROR and are closed
        node.start(log_dir)  # same ports
        out, err = proc.communicate(timeout=30)
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert proc.returncode == 0, (result, err.decode())
        assert result["connects"] >= 2
        assert result["bodies"] == ["after reconnect"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        node.stop()


def test_stompjs_sees_an_error_as_rabbitmq_clients_expect_it(gateway: GatewayProcess) -> None:
    result = run_js("error", gateway.ws_url, destination="/nowhere/at-all")
    assert result["headers"]["message"] == "Unknown destination"
    assert result["headers"]["content-type"] == "text/plain"
    assert result["headers"]["stompgate-reason"] == "destination"
    assert "/nowhere/at-all" in result["body"]


def test_stompjs_without_credentials_and_receipts_in_a_transaction(
    gateway: GatewayProcess,
) -> None:
    destination = f"/topic/js-tx.{uuid.uuid4().hex[:8]}"
    result = run_js("anonymousTransaction", gateway.ws_url, destination=destination)
    assert result["connected"]["user-name"] == "guest"  # --auth dev: RabbitMQ's default_user
    assert result["beforeCommit"] == {"received": 0, "receipts": 0}
    assert result["received"] == ["one", "two"]
    assert result["receipts"] == ["r1"]
