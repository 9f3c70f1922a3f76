"""Helpers for tests that need the real RabbitMQ: a private vhost per test run, management API."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

MGMT_URL = os.environ.get("STOMPGATE_TEST_RABBIT_MGMT", "http://127.0.0.1:15672")
AMQP_HOST = os.environ.get("STOMPGATE_TEST_RABBIT_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("STOMPGATE_TEST_RABBIT_PORT", "5672"))
RABBIT_STOMP_PORT = int(os.environ.get("RABBIT_STOMP_PORT", "61614"))
RABBIT_WEB_STOMP_PORT = int(os.environ.get("RABBIT_WEB_STOMP_PORT", "15674"))
USER = "guest"
PASSWORD = "guest"


def mgmt(method: str, path: str, body: Any = None) -> Any:
    """Call RabbitMQ's management HTTP API; returns parsed JSON (or None for empty bodies)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(MGMT_URL + "/api" + path, data=data, method=method)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def create_vhost(prefix: str = "stompgate-test") -> str:
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    mgmt("PUT", f"/vhosts/{quote(vhost)}", {})
    mgmt(
        "PUT",
        f"/permissions/{quote(vhost)}/{USER}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    return vhost


def delete_vhost(vhost: str) -> None:
    try:
        mgmt("DELETE", f"/vhosts/{quote(vhost)}")
    except urllib.error.HTTPError as exc:  # already gone
        if exc.code != 404:
            raise


def amqp_url(vhost: str) -> str:
    return f"amqp://{USER}:{PASSWORD}@{AMQP_HOST}:{AMQP_PORT}/{quote(vhost)}"


def queue_info(vhost: str, queue: str) -> dict[str, Any]:
    result: dict[str, Any] = mgmt("GET", f"/queues/{quote(vhost)}/{quote(queue)}")
    return result


def list_queues(vhost: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = mgmt("GET", f"/queues/{quote(vhost)}")
    return result
