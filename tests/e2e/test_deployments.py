"""Two deployments on one RabbitMQ vhost (#18): with their own names and topic exchanges they
keep their rooms, queues, ids and stores apart; a second deployment that would issue ids into
the same topic exchange, or under the same name, from another lease namespace is refused at
start, loudly, and the first keeps running. Real gateways and persist workers (processes),
real RabbitMQ (a fresh vhost), real Redis (prefixes of the test's own), SQLite stores."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.procs import WorkerProcess, post_body, room_name, store_rows, wait_stored
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess, free_port
from tests.support.process import ROOT
from tests.support.stomp_client import stomp_client

POSTS = 60


@pytest.fixture
def prefixes(redis_url: str) -> Iterator[dict[str, str]]:
    """A Redis prefix per deployment name, NOT part of the default namespace; deleted after."""
    run = uuid.uuid4().hex[:8]
    made = {name: f"t18-{run}-{name}:" for name in ("a", "b")}
    yield made
    client = redis.Redis.from_url(redis_url)
    try:
        for prefix in made.values():
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def deployment_env(redis_url: str, prefix: str, store: Path) -> dict[str, str]:
    return {
        "STOMPGATE_REDIS_URL": redis_url,
        "STOMPGATE_REDIS_PREFIX": prefix,
        "STOMPGATE_STORE": f"sqlite:///{store}",
        "STOMPGATE_FRAMES_PER_SECOND": "0",
    }


def test_two_deployments_with_their_own_names_and_exchanges_keep_their_posts_apart(
    fresh_vhost: str, redis_url: str, prefixes: dict[str, str], tmp_path: Path, log_dir: Path
) -> None:
    url = rabbit.amqp_url(fresh_vhost)
    room = room_name("same")  # one room name, in both deployments
    started: list[GatewayProcess | WorkerProcess] = []
    gateways: dict[str, GatewayProcess] = {}
    workers: dict[str, WorkerProcess] = {}
    stores = {name: tmp_path / f"{name}.db" for name in prefixes}
    try:
        for name, prefix in prefixes.items():
            deployment, exchange = f"t18-{name}", f"t18-{name}-rooms"
            env = deployment_env(redis_url, prefix, stores[name])
            worker = WorkerProcess(
                amqp_url=url,
                store_url=env["STOMPGATE_STORE"],
                name=deployment,
                env={
                    **env,
                    "STOMPGATE_DEPLOYMENT": deployment,
                    "STOMPGATE_TOPIC_EXCHANGE": exchange,
                },
            )
            worker.start(log_dir)
            started.append(worker)
            workers[name] = worker
            gateway = GatewayProcess(
                amqp_url=url,
                node_id=f"gw-{name}",
                extra_args=("--deployment", deployment, "--topic-exchange", exchange),
                env=env,
            )
            gateway.start(log_dir)
            started.append(gateway)
            gateways[name] = gateway
        # both lease node 0 in namespaces of their own: interleaved posts may share ids
        with (
            stomp_client(gateways["a"].stomp_port, login="alice", passcode="alice") as on_a,
            stomp_client(gateways["b"].stomp_port, login="alice", passcode="alice") as on_b,
        ):
            for n in range(POSTS):
                on_a.send(f"/app/rooms/{room}/messages", post_body(f"a{n}", f"a-{n}"))
                on_b.send(f"/app/rooms/{room}/messages", post_body(f"b{n}", f"b-{n}"))
        for name in prefixes:
            wait_stored(stores[name], POSTS, room=room)
        queues = {q["name"] for q in rabbit.mgmt("GET", f"/queues/{rabbit.quote(fresh_vhost)}")}
        for name in prefixes:
            rows = store_rows(stores[name])
            assert len(rows) == POSTS  # every post of its own deployment, nothing else
            assert {client_id for _, _, _, client_id in rows} == {
                f"{name}-{n}" for n in range(POSTS)
            }
            assert {r for _, r, _, _ in rows} == {room}
            assert workers[name].metric("stompgate_persist_conflicts_total") == 0
            assert f"t18-{name}.persist" in queues
            assert any(q.startswith(f"t18-{name}.node.gw-{name}.") for q in queues)
        assert "stompgate.persist" not in queues
    finally:
        for proc in reversed(started):
            proc.stop()


def refused_gateway(
    url: str, node_id: str, deployment: str, env: dict[str, str], log: Path
) -> tuple[int, str]:
    """Run a gateway that must refuse to start: (exit code, its output)."""
    args = [
        sys.executable,
        "-m",
        "gateway",
        "--http-host",
        "127.0.0.1",
        "--http-port",
        str(free_port()),
        "--stomp-port",
        "0",
        "--amqp-url",
        url,
        "--node-id",
        node_id,
        "--auth",
        "dev",
        "--deployment",
        deployment,
    ]
    done = subprocess.run(
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    log.write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def test_a_clashing_deployment_is_refused_at_start_and_the_first_keeps_running(
    fresh_vhost: str, redis_url: str, prefixes: dict[str, str], tmp_path: Path, log_dir: Path
) -> None:
    url = rabbit.amqp_url(fresh_vhost)
    first_env = deployment_env(redis_url, prefixes["a"], tmp_path / "a.db")
    first = GatewayProcess(
        amqp_url=url, node_id="gw-first", extra_args=("--deployment", "t18-c"), env=first_env
    )
    first.start(log_dir)
    try:
        other_env = deployment_env(redis_url, prefixes["b"], tmp_path / "b.db")
        # the same deployment name with another Redis prefix (so another lease namespace)
        code, out = refused_gateway(url, "gw-same-name", "t18-c", other_env, log_dir / "1.log")
        assert code == 3, out
        [line] = [ln for ln in out.splitlines() if "refusing to start" in ln]
        assert "topic exchange 'amq.topic'" in line
        assert f"prefix '{prefixes['a']}'" in line  # theirs
        assert f"prefix '{prefixes['b']}'" in line  # ours
        assert "registered by gateway node gw-first" in line
        assert "Fix:" in line
        # another name on the same topic exchange: refused too
        code, out = refused_gateway(url, "gw-other-name", "t18-d", other_env, log_dir / "2.log")
        assert code == 3, out
        [line] = [ln for ln in out.splitlines() if "refusing to start" in ln]
        assert "deployment 't18-c'" in line
        assert "deployment 't18-d'" in line
        # the first is untouched: still ready, still takes posts
        first.wait_ready(5)
        with stomp_client(first.stomp_port, login="alice", passcode="alice") as alice:
            alice.send(f"/app/rooms/{room_name('still')}/messages", post_body("still here"))
    finally:
        first.stop()
