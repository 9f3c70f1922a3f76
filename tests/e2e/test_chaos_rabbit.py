"""RabbitMQ under fire, on private nodes (tests/support/private_rabbit.py; never the shared
broker): a gateway node, the persist worker, posters and readers on three rooms.

* ``test_broker_stopped_and_restarted``: the node is stopped mid-traffic and started again on
  the same data directory; the gateway and the worker recover alone.
* ``test_cluster_node_killed``: a second node joins the first; the gateway and the worker are
  given both URLs and connect to the first; it is SIGKILLed mid-traffic; both move to the
  second node.

Every test makes the same checks with exact counts: every post ends receipted (a poster sends
what was not receipted again, same client_id); every receipted post is stored exactly once, in
its room; every reader, reconnecting with ``cur-max-message-id`` after each lost session, has
every stored message of its room (live or caught up), and no id the store does not have (a
post whose confirm was lost with the connection is taken over under its first id when it is
sent again; it used to be posted again under a second id, which readers got and the store
never kept). The figures, recovery times included, are printed (``-s``).

What two nodes can show, and what they cannot: a quorum queue needs a majority of its members,
and two nodes have no majority without both. So the persist queue here is a one-member quorum
queue on the node that survives (declared there first, ``STOMPGATE_QUORUM_INITIAL_GROUP_SIZE=1``
for the worker's declare to match), while the gateway's and the worker's connections, the
gateway's exclusive fan-out queue and the worker's consumer are on the node that dies. The
test shows that clients move to another node of the cluster, redeclare and resume, and lose
nothing receipted; it does not show a quorum queue surviving the loss of one of its members
(that takes three nodes: docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiormq
import pytest
import redis

from tests.e2e.procs import WorkerProcess, http_get, room_name
from tests.e2e.traffic import Poster, Posters, Reader, stored_per_post
from tests.support.gateway_proc import GatewayProcess
from tests.support.private_rabbit import PrivateRabbit, RabbitHome

pytestmark = pytest.mark.chaos

ROOMS = 3
POSTERS_PER_ROOM = 2
PER_POSTER = 150
USERS = [f"c{n:02d}" for n in range(ROOMS * POSTERS_PER_ROOM)]
DEV_USERS = ",".join(["alice:alice", *(f"{u}:{u}" for u in USERS)])
GATEWAY_ENV = {
    "STOMPGATE_FRAMES_PER_SECOND": "0",  # the per-session rate limit would pace this test
    "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0",
}


@pytest.fixture(scope="module")
def rabbit_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitHome]:
    home = RabbitHome(tmp_path_factory.mktemp("rabbit"))
    try:
        yield home
    finally:
        home.close()
    assert home.processes() == []  # no beam (nor helper) of ours left behind


@pytest.fixture(scope="module")
def node_a(rabbit_home: RabbitHome) -> PrivateRabbit:
    """One private node for the module (the cluster test adds a second and kills this one)."""
    node = rabbit_home.node("a")
    node.start()
    return node


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _start_gateway(
    amqp_url: str, chat_env: dict[str, str], log_dir: Path, node_id: str
) -> GatewayProcess:
    node = GatewayProcess(
        amqp_url=amqp_url,
        node_id=node_id,
        extra_args=("--dev-users", DEV_USERS),
        env={**chat_env, **GATEWAY_ENV},
    )
    node.start(log_dir)
    return node


def _traffic(
    gateway: GatewayProcess,
    worker: WorkerProcess,
    store: Path,
    disrupt: Callable[[], dict[str, float]],
    what: str,
) -> None:
    """Posters and readers on ROOMS rooms; ``disrupt()`` once a third is receipted (it returns
    timings to print); then every check, with exact counts."""
    rooms = [room_name(f"chaos{n}") for n in range(ROOMS)]
    readers = [
        Reader(
            "alice",
            gateway.stomp_port,
            [room],
            http_url=gateway.http_url,
            subscribe_wait=20,
            retry_pause=0.3,
        )
        for room in rooms
    ]
    reader_threads = [threading.Thread(target=r.run, daemon=True) for r in readers]
    for t in reader_threads:
        t.start()
    for r in readers:
        assert r.subscribed.wait(20), "a reader could not subscribe"
    posting = Posters(
        [
            Poster(
                user,
                rooms[n % ROOMS],
                [gateway.stomp_port],
                count=PER_POSTER,
                window=4,
                receipt_wait=20,
                connect_wait=120,  # the node may refuse sessions while the broker boots
            )
            for n, user in enumerate(USERS)
        ]
    )
    posters = posting.posters
    started = time.monotonic()
    posting.start()
    total = len(posters) * PER_POSTER
    posting.wait_receipted(total // 3, what="posting before the disruption")
    timings = disrupt()
    posting.join(150)
    posted = time.monotonic()
    receipted = posting.receipted()
    assert len(receipted) == total  # every post receipted, once each

    # Stored: every receipted post exactly once, in its room; nothing else.
    room_of = {p.user: p.room for p in posters}
    deadline = time.monotonic() + 60
    while True:
        stored = stored_per_post(store) if store.exists() else {}
        if len(stored) >= total or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(stored) == receipted, f"{len(stored)} of {total} stored"
    assert {key: len(rows) for key, rows in stored.items() if len(rows) != 1} == {}
    assert all(rows[0][1] == room_of[sender] for (sender, _), rows in stored.items())
    ids_by_room: dict[str, set[int]] = {room: set() for room in rooms}
    for rows in stored.values():
        ids_by_room[rows[0][1]].add(rows[0][0])

    # Delivered: each reader has every stored message of its room.
    deadline = time.monotonic() + 30
    while any(not ids_by_room[r.rooms[0]] <= r.ids(r.rooms[0]) for r in readers):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for r in readers:
        r.stop.set()
    for t in reader_threads:
        t.join(10)
    assert [(r.rooms, r.failure) for r in readers if r.failure is not None] == []
    for r in readers:
        room = r.rooms[0]
        seen, top = r.seen[room], r.highest[room]
        missing = ids_by_room[room] - set(seen)
        assert not missing, (
            f"reader of {room} never got {len(missing)} (below its highest id"
            f" {top}: {sum(1 for i in missing if i < top)}; sessions {r.sessions},"
            f" refused {r.refused}; history now:"
            f" {http_get(f'{gateway.http_url}/api/rooms/{room}/messages?after={top}')[:2]})"
        )
        # Nothing beyond the store: a post re-sent after its confirm was lost is taken over
        # under its first id, never published again under a second one.
        extra = {i: cid for i, cid in seen.items() if i not in ids_by_room[room]}
        assert extra == {}, f"reader of {room} got ids the store never kept: {extra}"
        assert r.other_events == 0  # chat messages only (an event without an id is no post)
    delivered = sum(r.delivered() for r in readers)
    down_at = timings["broker_down_at"]
    up_at = timings["broker_up_at"]
    first_after = min((r.at for r in posting.receipts() if r.at > up_at), default=up_at)
    since = "it was back" if up_at > down_at else "the kill"
    print(
        f"\n{what}: sent {total} posts ({sum(p.sends for p in posters)} SEND frames,"
        f" {sum(p.reconnects for p in posters)} poster reconnects); receipted {len(receipted)};"
        f" stored {sum(len(v) for v in stored.values())}; delivered {delivered} to"
        f" {len(readers)} readers ({sum(r.live for r in readers)} live,"
        f" {sum(r.replayed for r in readers)} caught up, {sum(r.duplicates for r in readers)}"
        f" twice; {sum(r.sessions for r in readers)} reader sessions,"
        f" {sum(r.refused for r in readers)} refused tries); broker out"
        f" {up_at - down_at:.1f} s; after {since}: gateway ready"
        f" {timings['gateway_ready_at'] - up_at:.1f} s, worker consuming"
        f" {timings['worker_ready_at'] - up_at:.1f} s, first receipt"
        f" {first_after - up_at:.1f} s; traffic {posted - started:.1f} s"
    )


def _wait_recovered(gateway: GatewayProcess, worker: WorkerProcess) -> dict[str, float]:
    """When the gateway's /readyz and the worker's /healthz answer 200 again after saying the
    broker was lost. One never seen down within 5 s recovered before a poll could see it: its
    time is the start."""
    checks = {
        "gateway_ready_at": f"{gateway.http_url}/readyz",
        "worker_ready_at": f"http://127.0.0.1:{worker.metrics_port}/healthz",
    }
    start = time.monotonic()
    noticed: set[str] = set()
    found: dict[str, float] = {}
    while len(found) < len(checks):
        now = time.monotonic()
        assert now < start + 60, f"not recovered within 60 s: {found}"
        for name, url in checks.items():
            if name in found:
                continue
            if not _ok(url):
                noticed.add(name)
            elif name in noticed:
                found[name] = now
            elif now > start + 5:
                found[name] = start
        time.sleep(0.05)
    return found


def test_broker_stopped_and_restarted(
    node_a: PrivateRabbit,
    chat_env: dict[str, str],
    store_path: Path,
    store_url: str,
    log_dir: Path,
    redis_keys: redis.Redis,
) -> None:
    url = node_a.amqp_url(node_a.add_vhost("restart"))
    worker = WorkerProcess(amqp_url=url, store_url=store_url)
    worker.start(log_dir)
    gateway = _start_gateway(url, chat_env, log_dir, "chaos-restart")
    try:

        def restart() -> dict[str, float]:
            down = time.monotonic()
            node_a.stop()  # graceful: RabbitMQ's own orderly shutdown
            time.sleep(1.0)  # out for a moment longer: posts meanwhile get errors
            node_a.start()
            up = time.monotonic()
            return {"broker_down_at": down, "broker_up_at": up, **_wait_recovered(gateway, worker)}

        _traffic(gateway, worker, store_path, restart, "RabbitMQ stopped and restarted")
        print(f"private node boots: {', '.join(f'{b:.1f} s' for b in node_a.boots)}")
    finally:
        gateway.stop()
        worker.stop()


async def _declare_persist_queue(url: str) -> None:
    """The persist worker's queue, a one-member quorum queue on the node of ``url``."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.queue_declare(
            "stompgate.persist",
            durable=True,
            arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 1},
        )
    finally:
        await connection.close()


def test_cluster_node_killed(
    rabbit_home: RabbitHome,
    node_a: PrivateRabbit,
    chat_env: dict[str, str],
    store_path: Path,
    store_url: str,
    log_dir: Path,
    redis_keys: redis.Redis,
) -> None:
    node_b = rabbit_home.node("b")
    node_b.start()
    node_b.join(node_a)
    vhost = node_a.add_vhost("cluster")
    url_a, url_b = node_a.amqp_url(vhost), node_b.amqp_url(vhost)
    asyncio.run(_declare_persist_queue(url_b))
    both = f"{url_a},{url_b}"
    worker = WorkerProcess(
        amqp_url=both, store_url=store_url, env={"STOMPGATE_QUORUM_INITIAL_GROUP_SIZE": "1"}
    )
    worker.start(log_dir)
    gateway = _start_gateway(both, chat_env, log_dir, "chaos-cluster")
    try:

        def kill_a() -> dict[str, float]:
            down = time.monotonic()
            node_a.kill()  # SIGKILL: no goodbye to anyone
            return {
                "broker_down_at": down,
                "broker_up_at": down,
                **_wait_recovered(gateway, worker),
            }

        _traffic(gateway, worker, store_path, kill_a, "cluster node killed (-9)")
        # The persist queue's one member was on the node that survived (see the docstring).
        queues = node_b.ctl("list_queues", "-p", vhost, "name", "leader", "--quiet")
        assert f"stompgate.persist\t{node_b.node}" in queues, queues
        boots = [*node_a.boots, *node_b.boots]
        print(f"private node boots: {', '.join(f'{b:.1f} s' for b in boots)}")
        assert (
            "connected to RabbitMQ at amqp://guest:***@127.0.0.1:" + str(node_b.amqp_port)
            in gateway.logs()
        )
    finally:
        gateway.stop()
        worker.stop()
        node_b.kill()
