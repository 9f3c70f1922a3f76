"""rabbitmq/definitions.json, applied by rabbitmq/apply.py, is what the code declares.

On a fresh vhost the script creates every exchange, queue, binding and policy and says so;
a second run changes nothing and says so. Then every built-in worker and a gateway node's
relay start against that vhost: a queue or exchange whose arguments differed from what the
code declares would fail them with PRECONDITION_FAILED, and anything the code declares that
the definitions lack would show up as new on the broker afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatstate.deployment import exchange_registry, registry_queue
from gateway.relay import Relay, RelaySettings
from tests.support import rabbit
from workers.registry import BUILTIN
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = json.loads((ROOT / "rabbitmq" / "definitions.json").read_text())


def apply(vhost: str, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "rabbitmq" / "apply.py"), *args],
        env={"STOMPGATE_AMQP_URL": rabbit.amqp_url(vhost), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


def definitions(vhost: str) -> dict[str, Any]:
    result: dict[str, Any] = rabbit.mgmt("GET", f"/definitions/{rabbit.quote(vhost)}")
    return result


def names(defs: dict[str, Any], kind: str) -> set[str]:
    return {item["name"] for item in defs.get(kind) or ()}


def bindings(defs: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(b["source"], b["destination"], b["routing_key"]) for b in defs["bindings"]}


def test_apply_creates_everything_once_and_says_so(fresh_vhost: str) -> None:
    code, report = apply(fresh_vhost)
    assert code == 0, report
    for queue in DEFINITIONS["queues"]:
        assert f"rabbitmq: created queue {queue['name']} (" in report
    assert "created exchange stompgate.user" in report
    assert "created binding amq.topic -> queue stompgate.persist ('room.*')" in report
    assert "created policy stompgate-dead-letters" in report
    have = definitions(fresh_vhost)
    for kind in ("queues", "exchanges", "policies"):
        assert names(DEFINITIONS, kind) <= names(have, kind)
    assert bindings(DEFINITIONS) <= bindings(have)
    persist = rabbit.queue_info(fresh_vhost, "stompgate.persist")
    assert persist["type"] == "quorum"
    patterns = {p["name"]: re.compile(p["pattern"]) for p in DEFINITIONS["policies"]}
    assert patterns["stompgate-dead-letters"].search("stompgate.persist.dlq")
    assert not patterns["stompgate-dead-letters"].search("stompgate.persist")
    assert patterns["stompgate-durable-subscriptions"].search("stompgate.dsub.0f3a")

    code, again = apply(fresh_vhost)
    assert code == 0, again
    assert "created" not in again
    assert "nothing changed" in again


@pytest.mark.parametrize(
    ("deployment", "topic_exchange"), [("stompgate", "amq.topic"), ("blue", "blue-rooms")]
)
async def test_the_workers_and_the_gateway_start_against_the_definitions(
    fresh_vhost: str, tmp_path: Path, redis_prefix: str, deployment: str, topic_exchange: str
) -> None:
    code, report = apply(
        fresh_vhost, "--deployment", deployment, "--topic-exchange", topic_exchange
    )
    assert code == 0, report
    before = definitions(fresh_vhost)
    if deployment != "stompgate":
        assert "blue.persist" in names(before, "queues")
        assert "stompgate.persist" not in names(before, "queues")
        assert {"blue.user", "blue-rooms"} <= names(before, "exchanges")
        assert ("blue-rooms", "blue.persist", "room.*") in bindings(before)
        assert "blue-dead-letters" in names(before, "policies")
    url = rabbit.amqp_url(fresh_vhost)
    settings = WorkerSettings(
        amqp_url=url,
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        metrics_port=None,
        deployment=deployment,
        topic_exchange=topic_exchange,
        redis_prefix=redis_prefix,
    )
    for name, factory in BUILTIN.items():
        app = factory(settings)
        app.configure(settings)
        await app.start()  # PRECONDITION_FAILED (other arguments) would raise here
        try:
            assert app.healthy, name
        finally:
            await app.drain(1.0)
    relay = Relay(
        RelaySettings(
            amqp_url=url,
            node_id="definitions-test",
            deployment=deployment,
            topic_exchange=topic_exchange,
        )
    )
    await relay.start()  # declares <deployment>.user: a different type would fail here
    try:
        assert relay.ready
    finally:
        await relay.close()
    after = definitions(fresh_vhost)
    # besides the definitions, only the lease-namespace registries (chatstate.deployment),
    # which record who owns the vhost's topic exchange and deployment name
    registries = {exchange_registry(topic_exchange), registry_queue(deployment)}
    assert names(after, "queues") == names(before, "queues") | registries, "queues declared"
    assert names(after, "exchanges") == names(before, "exchanges"), "exchanges declared"
    assert bindings(after) == bindings(before)


def test_a_queue_with_other_arguments_is_a_conflict_left_alone(fresh_vhost: str) -> None:
    vhost = rabbit.quote(fresh_vhost)
    rabbit.mgmt("PUT", f"/queues/{vhost}/stompgate.persist.dlq", {"durable": True})  # classic
    code, report = apply(fresh_vhost)
    assert code == 1, report
    assert "CONFLICT: queue stompgate.persist.dlq exists with" in report
    assert "created queue stompgate.persist (quorum)" in report  # the rest is applied
    assert rabbit.queue_info(fresh_vhost, "stompgate.persist.dlq")["type"] == "classic"


def test_a_changed_policy_is_updated_and_dry_run_changes_nothing(fresh_vhost: str) -> None:
    code, report = apply(fresh_vhost, "--dry-run")
    assert code == 0, report
    assert "would create queue stompgate.persist (quorum)" in report
    assert names(definitions(fresh_vhost), "queues") == set()
    apply(fresh_vhost)
    rabbit.mgmt(
        "PUT",
        f"/policies/{rabbit.quote(fresh_vhost)}/stompgate-durable-subscriptions",
        {"pattern": "^stompgate\\.dsub\\.", "apply-to": "queues", "definition": {"expires": 1000}},
    )
    code, report = apply(fresh_vhost)
    assert code == 0, report
    assert "updated policy stompgate-durable-subscriptions" in report
    policies = {p["name"]: p for p in definitions(fresh_vhost)["policies"]}
    assert policies["stompgate-durable-subscriptions"]["definition"] == {"expires": 2592000000}


def test_a_missing_vhost_is_named() -> None:
    code, report = apply("stompgate-test-no-such-vhost")
    assert code == 2
    assert "vhost 'stompgate-test-no-such-vhost' does not exist" in report
