"""Health, readiness, metrics, timeouts, slow consumers and graceful drain."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from pathlib import Path

from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import StompClient, stomp_client


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def raw_stomp(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_health_ready_and_metrics(gateway: GatewayProcess) -> None:
    status, body = get(gateway.http_url + "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    status, body = get(gateway.http_url + "/readyz")
    assert (status, json.loads(body)) == (200, {"ready": True})
    topic = f"/topic/metrics-{uuid.uuid4().hex[:6]}"
    with stomp_client(gateway.stomp_port) as client:
        client.subscribe(topic, "m")
        client.send(topic, "x")
        client.next_message()
        status, body = get(gateway.http_url + "/metrics")
    text = body.decode()
    assert status == 200
    assert 'stompgate_sessions{transport="tcp"}' in text
    assert 'stompgate_frames_in_total{command="SEND"}' in text
    assert 'stompgate_frames_out_total{command="RECEIPT"}' in text
    assert 'stompgate_frames_out_total{command="MESSAGE"}' in text  # the deliveries
    assert "stompgate_publish_confirm_seconds_count" in text


def test_a_socket_that_never_connects_is_dropped(amqp_url: str, log_dir: Path) -> None:
    node = GatewayProcess(
        amqp_url=amqp_url, node_id="gw-slowloris", extra_args=("--connect-timeout", "1")
    )
    node.start(log_dir)
    try:
        with raw_stomp(node.stomp_port) as sock:
            sock.sendall(b"CONNECT\naccept-version:1.2\n")  # ... and never finishes the frame
            started = time.monotonic()
            data = read_until_closed(sock)
        assert time.monotonic() - started < 5
        assert b"ERROR\n" in data
        # sent before CONNECTED, so not escaped (STOMP.js unescapes only after CONNECTED 1.2)
        assert b"message:CONNECT timeout\n" in data
        assert b"\n\nCONNECT timeout: no CONNECT frame within 1 s" in data
        with stomp_client(node.stomp_port) as other:  # everyone else is still served
            other.send("/topic/still-here", "yes")
    finally:
        node.stop()


def test_a_silent_client_is_dropped_after_the_heartbeat_grace(amqp_url: str, log_dir: Path) -> None:
    node = GatewayProcess(
        amqp_url=amqp_url, node_id="gw-silent", extra_args=("--heartbeat-receive-ms", "500")
    )
    node.start(log_dir)
    try:
        with raw_stomp(node.stomp_port) as sock:
            sock.sendall(
                b"CONNECT\naccept-version:1.2\nhost:x\nlogin:guest\npasscode:guest\n"
                b"heart-beat:500,0\n\n\x00"
            )  # promises a heart-beat every 500 ms, then says nothing
            started = time.monotonic()
            data = read_until_closed(sock)
        elapsed = time.monotonic() - started
        assert data.startswith(b"CONNECTED\n")
        assert b"heart-beat:1000,500" in data  # the server's own sx,sy (its floors)
        assert b"message:Heart-beat timeout\n" in data
        assert b"\n\nheart-beat timeout: nothing received for" in data  # the body
        assert 0.9 < elapsed < 5
    finally:
        node.stop()


def test_slow_consumer_is_told_and_closed(amqp_url: str, log_dir: Path) -> None:
    node = GatewayProcess(
        amqp_url=amqp_url,
        node_id="gw-slow",
        extra_args=("--max-outbound-buffer", "65536"),
        env={"STOMPGATE_BYTES_PER_SECOND": "0", "STOMPGATE_FRAMES_PER_SECOND": "0"},
    )
    node.start(log_dir)
    room = "/topic/room.slow"
    try:
        sock = raw_stomp(node.stomp_port)
        sock.sendall(
            b"CONNECT\naccept-version:1.2\nhost:x\nlogin:guest\npasscode:guest\n\n\x00"
            + f"SUBSCRIBE\nid:s\ndestination:{room}\nreceipt:r\n\n\x00".encode()
        )
        time.sleep(0.5)  # CONNECTED and RECEIPT arrive; then we stop reading
        body = "x" * 60000
        with stomp_client(node.stomp_port) as sender:
            for _ in range(300):  # 18 MB: more than the kernel buffers take on loopback
                sender.send(room, body, receipt=False)
            sender.send(room, "last")
        with sock:
            data = read_until_closed(sock, 15)
        assert b"message:Slow consumer\n" in data
        assert b"\n\nslow consumer: " in data
        assert b"max_outbound_buffer 65536" in data
        _, metrics = get(node.http_url + "/metrics")
        assert b"stompgate_slow_consumer_drops_total 1.0" in metrics
    finally:
        node.stop()


def test_sigterm_drains_and_names_the_reason(amqp_url: str, log_dir: Path) -> None:
    node = GatewayProcess(amqp_url=amqp_url, node_id="gw-drain")
    node.start(log_dir)
    client = StompClient(node.stomp_port)
    client.connect()
    code = node.stop()
    error = client.next_error()
    assert error.headers["message"] == "Server shutting down"
    assert error.body.startswith("server shutting down")
    assert code == 0
    client.disconnect()


def test_an_idle_session_is_closed_after_the_idle_timeout(amqp_url: str, log_dir: Path) -> None:
    node = GatewayProcess(amqp_url=amqp_url, node_id="gw-idle", env={"STOMPGATE_IDLE_TIMEOUT": "1"})
    node.start(log_dir)
    try:
        with raw_stomp(node.stomp_port) as sock:
            sock.sendall(
                b"CONNECT\naccept-version:1.2\nhost:x\nlogin:guest\npasscode:guest\n\n\x00"
            )  # no heart-beats, then nothing at all
            started = time.monotonic()
            data = read_until_closed(sock)
        assert data.startswith(b"CONNECTED\n")
        assert b"message:Idle timeout\n" in data
        assert b"\n\nidle timeout: nothing received for 1 s" in data
        assert 0.9 < time.monotonic() - started < 5
        _, metrics = get(node.http_url + "/metrics")
        assert b'stompgate_errors_total{reason="idle_timeout"} 1.0' in metrics
    finally:
        node.stop()


def confirm_count(gateway: GatewayProcess) -> float:
    _, body = get(gateway.http_url + "/metrics")
    (line,) = [
        line
        for line in body.decode().splitlines()
        if line.startswith("stompgate_publish_confirm_seconds_count")
    ]
    return float(line.split()[-1])


def test_chat_posts_are_observed_in_the_publish_confirm_histogram(
    gateway: GatewayProcess,
) -> None:
    before = confirm_count(gateway)
    with stomp_client(gateway.stomp_port) as client:
        post = json.dumps({"client_id": uuid.uuid4().hex, "text": "timed"})
        receipt = client.send(f"/app/rooms/metrics-{uuid.uuid4().hex[:6]}/messages", post)
        assert "stompgate-message-id" in receipt
    assert confirm_count(gateway) == before + 1
