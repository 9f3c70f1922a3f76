"""Redis under fire (issue 18, item 4's Redis bullet and item 6): two gateway nodes and the
persist worker on a private Redis that is restarted empty, or on a Sentinel set whose primary
is killed with -9, under chat traffic.

What must hold, with exact counts of sent, receipted, delivered and stored:

* posting resumes within seconds of Redis's return (the time is printed);
* every receipted post is stored once (one row per sender and client id) and delivered live
  to a reader on each node;
* ids keep rising: every post receipted after the outage has an id above every id receipted
  before it, and no id is issued twice;
* the node leases are taken again (two distinct node ids), the room counters are rebuilt
  from the store (counter - holes = stored messages of the room), and unread counts, with a
  read pointer set before the outage and one after, are exactly what the store says.

Both run alone with ``pytest -m chaos``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chatstate.keys import ChatKeys
from tests.e2e.procs import WorkerProcess, store_rows, wait_stored
from tests.e2e.test_rooms import Api, messages_until, send
from tests.e2e.traffic import Poster, Posters, Reader, Receipted, wait_for
from tests.support.gateway_proc import GatewayProcess
from tests.support.private_redis import PrivateCluster, PrivateRedis, PrivateSentinel
from tests.support.security import StompPeer, hs_token, jwt_env

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

POSTERS = ["p0", "p1", "p2", "p3"]
READER = "rd"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def sentinel_set() -> Iterator[PrivateSentinel]:
    with PrivateSentinel() as servers:
        yield servers


def _env(url: str, prefix: str) -> dict[str, str]:
    return {
        **jwt_env(prefix, STOMPGATE_PRESENCE="false"),
        "STOMPGATE_REDIS_URL": url,
        "STOMPGATE_FRAMES_PER_SECOND": "0",
        "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0",
    }


def _rooms(node: GatewayProcess) -> list[str]:
    """Two group rooms: p0, p1 and the reader in one; p2, p3 and the reader in the other."""

    async def create() -> list[str]:
        made = []
        for owner, other in (("p0", "p1"), ("p2", "p3")):
            status, _, room = await Api(node, owner).call(
                "POST", "/api/rooms", {"name": f"chaos {owner}", "members": [other, READER]}
            )
            assert status == 201, room
            made.append(str(room["id"]))
        return made

    return asyncio.run(create())


def _unread(node: GatewayProcess, user: str) -> dict[str, int]:
    status, _, counts = asyncio.run(Api(node, user).call("GET", "/api/unread"))
    assert status == 200, counts
    return {entry["room"]: int(entry["unread"]) for entry in counts["rooms"]}


@contextlib.asynccontextmanager
async def _connected(node: GatewayProcess, user: str) -> AsyncIterator[StompPeer]:
    async with StompPeer.tcp(node.stomp_port) as peer:
        frame = await peer.connect(hs_token(user))
        assert frame.command == "CONNECTED", frame
        yield peer


def _mark_read(node: GatewayProcess, room: str, message_id: int) -> None:
    async def mark() -> None:
        async with _connected(node, READER) as peer:
            body = {"message_id": str(message_id)}
            frames = await send(peer, f"/app/rooms/{room}/read", body, "m")
            assert frames[-1].command == "RECEIPT", frames

    asyncio.run(mark())


class Traffic:
    """Four posters (two per room) spread over both nodes, a reader on each node: one live
    session each (no catch-up: what they get is what was delivered live)."""

    def __init__(self, nodes: list[GatewayProcess], rooms: list[str]) -> None:
        ports = [n.stomp_port for n in nodes]
        self.posting = Posters(
            [
                Poster(
                    user,
                    rooms[i // 2],
                    ports[i % 2 :] + ports[: i % 2],
                    passcode=hs_token(user),
                    connect_wait=120,  # a node may refuse sessions while Redis is away
                    retry_pause=0.1,
                )
                for i, user in enumerate(POSTERS)
            ]
        )
        self.posters = self.posting.posters
        self.readers = [
            Reader(READER, port, rooms, passcode=hs_token(READER), catch_up=False) for port in ports
        ]
        self.reading = [threading.Thread(target=r.run, daemon=True) for r in self.readers]
        for thread in self.reading:
            thread.start()
        for reader in self.readers:
            assert reader.subscribed.wait(30), reader.failure
        self.posting.start()

    def receipts(self) -> list[Receipted]:
        return self.posting.receipts()

    def wait_receipts(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: len(self.receipts()) >= count, timeout, f"{count} receipts")

    def finish(self) -> None:
        self.posting.stop()
        self.posting.join(60)

    def close_readers(self) -> None:
        """End the readers' sessions (what had come before counts)."""
        for reader in self.readers:
            reader.stop.set()
        for thread in self.reading:
            thread.join(10)


def _check(
    traffic: Traffic,
    rooms: list[str],
    store_path: Path,
    outage_started: float,
    back: float,
    *,
    client: redis.Redis,
    prefix: str,
) -> dict[str, Any]:
    """The accounting every scenario ends with; the figures for the printout."""
    receipted = traffic.receipts()
    sent = sum(p.posts for p in traffic.posters)
    wait_stored(store_path, len(receipted), timeout=30)
    rows = store_rows(store_path)
    by_key = {(r[2], r[3]): r for r in rows}
    assert len(by_key) == len(rows)  # one row per (sender, client id)
    mine = {(p.user, r.client_id): r.message_id for p in traffic.posters for r in p.receipted}
    # Every receipted post stored, under the id its receipt named; nothing else stored.
    assert {key: by_key[key][0] for key in mine if key in by_key} == mine
    assert set(by_key) == set(mine)
    # The last post of each poster may be sent and never receipted (the run stopped): no row.
    assert sent - len(receipted) <= len(traffic.posters)
    # Ids keep rising across the outage: posts sent after Redis was back have ids above every
    # post receipted before it went; no id issued twice.
    before = [r.message_id for r in receipted if r.at < outage_started]
    after = [r.message_id for r in receipted if r.sent >= back]
    assert before
    assert after
    assert min(after) > max(before)
    assert len({r.message_id for r in receipted}) == len(receipted)
    # Delivered live, to a reader on each node, exactly the stored messages of each room.
    for reader in traffic.readers:

        def done(r: Reader = reader) -> bool:
            return r.delivered() >= len(rows) or r.failure is not None

        wait_for(done, 20, "every stored message delivered")
        assert reader.failure is None, reader.failure
        for room in rooms:
            assert sorted(reader.ids(room)) == [r[0] for r in rows if r[1] == room]
    # Room counters rebuilt from the store, then counted on: counter - holes = stored.
    keys = ChatKeys(prefix)
    for room in rooms:
        seq = int(client.get(keys.room_seq(room)) or 0)
        holes = int(client.zcard(keys.holes(room)))
        assert seq - holes == sum(1 for r in rows if r[1] == room), (room, seq, holes)
    return {"sent": sent, "receipted": len(receipted), "stored": len(rows)}


def _leases(client: redis.Redis, prefix: str) -> set[bytes]:
    return {k for k in client.scan_iter(match=f"{prefix}snowflake:*node:*")}


def _pointer_checks(node: GatewayProcess, rooms: list[str], store_path: Path) -> None:
    """The reader's unread counts: exactly the stored messages above its pointer."""
    rows = store_rows(store_path)
    counts = _unread(node, READER)
    assert set(counts) == set(rooms)
    return_value = {room: counts[room] for room in rooms}
    pointer = _POINTERS.get(node.node_id, {})
    for room in rooms:
        expected = sum(1 for r in rows if r[1] == room and r[0] > pointer.get(room, 0))
        assert return_value[room] == expected, (room, return_value[room], expected)


_POINTERS: dict[str, dict[str, int]] = {}


def _run_outage(
    nodes: list[GatewayProcess],
    worker: WorkerProcess,
    store_path: Path,
    prefix: str,
    client_factory: Any,
    outage: Any,
    what: str,
) -> None:
    rooms = _rooms(nodes[0])
    traffic = Traffic(nodes, rooms)
    try:
        traffic.wait_receipts(40)
        # A read pointer before the outage (the store keeps it too).
        wait_stored(store_path, 40, timeout=30)
        first = [r for r in store_rows(store_path) if r[1] == rooms[0]][5][0]
        _mark_read(nodes[0], rooms[0], first)
        pointers = {rooms[0]: first}
        for node in nodes:
            _POINTERS[node.node_id] = pointers
        before = len(traffic.receipts())
        outage_started = time.monotonic()
        back = outage()
        resumed = None
        while resumed is None:
            fresh = [r.at for r in traffic.receipts() if r.at >= back]
            if fresh:
                resumed = min(fresh)
            elif time.monotonic() > back + 30:
                raise AssertionError(f"no post receipted within 30 s of {what}")
            time.sleep(0.02)
        traffic.wait_receipts(len(traffic.receipts()) + 40)
    finally:
        traffic.finish()
    client = client_factory()
    try:
        figures = _check(
            traffic, rooms, store_path, outage_started, back, client=client, prefix=prefix
        )
        # Both nodes lease a node id again (at their next renewal: within a third of the
        # lease's ttl), distinct ids.
        wait_for(lambda: len(_leases(client, prefix)) == 2, 15, "both node ids leased again")
        leased = time.monotonic() - back
        assert len(set(client.mget(sorted(_leases(client, prefix))))) == 2
        # Unread counts: the pointer from before the outage (Redis lost it; the store has
        # it), then one moved after it.
        _pointer_checks(nodes[1], rooms, store_path)
        later = [r for r in store_rows(store_path) if r[1] == rooms[1]][-3][0]
        _mark_read(nodes[1], rooms[1], later)
        pointers[rooms[1]] = later
        _pointer_checks(nodes[0], rooms, store_path)
        # Catch-up from an id before the outage's end, and the membership broadcast reaching
        # the other node once both nodes listen again (pub/sub keeps nothing: a removal
        # published while a node resubscribes is missed, see gateway/chat/control.py).
        channel = ChatKeys(prefix).control_channel()
        wait_for(lambda: client.pubsub_numsub(channel)[0][1] == 2, 15, "both nodes listening again")
        ids = [r[0] for r in store_rows(store_path) if r[1] == rooms[0]]
        asyncio.run(_removal_and_catch_up(nodes[0], nodes[1], rooms[0], ids[-4], ids[-3:]))
    finally:
        client.close()
        traffic.close_readers()
    print(
        f"\n{what}: posting resumed {resumed - back:.2f} s after Redis was back "
        f"({back - outage_started:.2f} s outage); sent {figures['sent']}, receipted "
        f"{figures['receipted']} ({before} before), delivered {figures['stored']} to each of "
        f"2 readers, stored {figures['stored']}; poster reconnects "
        f"{sum(p.reconnects for p in traffic.posters)} (connections refused "
        f"{sum(p.connect_failures for p in traffic.posters)}); node ids leased again within "
        f"{leased:.1f} s"
    )


@pytest.fixture
def start_node(e2e_vhost_url: str, chat_env: dict[str, str], log_dir: Path) -> Iterator[Any]:
    """``start_node("gw-a", env)``: a JWT-mode gateway on the test's vhost and store."""
    started: list[GatewayProcess] = []

    def start(node_id: str, env: dict[str, str]) -> GatewayProcess:
        node = GatewayProcess(
            amqp_url=e2e_vhost_url, node_id=node_id, env={**chat_env, **env}, auth="jwt"
        )
        started.append(node)
        node.start(log_dir)
        return node

    yield start
    for node in started:
        node.stop()


def test_redis_restarted_empty_posting_resumes_and_state_is_rebuilt(
    private_redis: PrivateRedis,
    start_node: Any,
    worker: WorkerProcess,
    store_path: Path,
) -> None:
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    env = _env(private_redis.url, prefix)
    nodes = [start_node(f"rr-{n}", env) for n in "ab"]

    def outage() -> float:
        private_redis.server.restart(down_for=1.0)  # empty: no persistence
        return time.monotonic()

    _run_outage(
        nodes, worker, store_path, prefix, private_redis.server.client, outage, "Redis restart"
    )


def test_sentinel_failover_keeps_accepting_posts(
    sentinel_set: PrivateSentinel,
    start_node: Any,
    worker: WorkerProcess,
    store_path: Path,
) -> None:
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    env = _env(sentinel_set.url, prefix)
    nodes = [start_node(f"sf-{n}", env) for n in "ab"]

    def failover() -> float:
        sentinel_set.primary.kill()  # kill -9
        wait_for(lambda: sentinel_set.master_port() == sentinel_set.replica.port, 30, "failover")
        return time.monotonic()

    _run_outage(
        nodes,
        worker,
        store_path,
        prefix,
        sentinel_set.replica.client,
        failover,
        "Sentinel failover",
    )


# -- Redis Cluster --------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    with PrivateCluster() as servers:
        yield servers


def _presence(node: GatewayProcess, asker: str, room: str) -> dict[str, str]:
    status, _, body = asyncio.run(Api(node, asker).call("GET", f"/api/rooms/{room}/presence"))
    assert status == 200, body
    return {entry["user"]: entry["status"] for entry in body["users"]}


async def _removal_and_catch_up(
    a: GatewayProcess, b: GatewayProcess, room: str, after: int, expected: list[int]
) -> None:
    # Catch-up from an id (the subscribe-time replay), typing, and the removal broadcast
    # (pub/sub) ending the removed member's session on the other node.
    async with _connected(b, READER) as reader:
        await reader.send_frame(
            "SUBSCRIBE",
            {"id": "c", "destination": f"/topic/room.{room}", "cur-max-message-id": str(after)},
        )
        got: list[int] = []
        while len(got) < len(expected):
            frame = await messages_until(reader, "message")
            got.append(int(json.loads(frame.body)["id"]))
        assert got == expected
        await send(reader, f"/app/rooms/{room}/typing", {"typing": True}, "t")
    async with _connected(b, "p1") as p1:
        await p1.send_frame(
            "SUBSCRIBE", {"id": "s", "destination": f"/topic/room.{room}", "receipt": "s"}
        )
        await p1.receipt("s")
        status, _, _ = await Api(a, "p0").call("DELETE", f"/api/rooms/{room}/members/p1")
        assert status == 204
        error = await p1.expect_error()
        assert error.message == "Removed from room"


def test_chat_and_presence_on_a_redis_cluster(
    cluster: PrivateCluster, start_node: Any, worker: WorkerProcess, store_path: Path
) -> None:
    """Every chat and presence path on a 3-master cluster: rooms and rosters, posts (reserve,
    confirm), live delivery, read pointers and unread counts, catch-up, typing, presence,
    and the membership broadcast over pub/sub. No Redis error in any node's log."""
    prefix = f"{{sg-{uuid.uuid4().hex[:8]}}}:"
    env = {**_env(cluster.url, prefix), "STOMPGATE_PRESENCE": "true"}
    nodes = [start_node(f"cl-{n}", env) for n in "ab"]
    rooms = _rooms(nodes[0])
    traffic = Traffic(nodes, rooms)
    try:
        traffic.wait_receipts(60)
        wait_for(lambda: _presence(nodes[1], READER, rooms[0])[READER] == "online", 15, "online")
    finally:
        traffic.finish()
    wait_stored(store_path, len(traffic.receipts()), timeout=30)
    rows = [r for r in store_rows(store_path) if r[1] == rooms[0]]
    _POINTERS["cl-a"] = _POINTERS["cl-b"] = {rooms[0]: rows[3][0]}
    _mark_read(nodes[0], rooms[0], rows[3][0])
    _pointer_checks(nodes[1], rooms, store_path)
    traffic.close_readers()
    for reader in traffic.readers:
        assert reader.failure is None, reader.failure
        assert sorted(reader.ids(rooms[0])) == [r[0] for r in rows]
    asyncio.run(
        _removal_and_catch_up(nodes[0], nodes[1], rooms[0], rows[-4][0], [r[0] for r in rows[-3:]])
    )
    for node in nodes:
        node.stop()
        assert node.log_path is not None
        log = node.log_path.read_text(errors="replace")
        for needle in ("CROSSSLOT", "non local key", "MOVED", "Traceback"):
            assert needle not in log, log
    print(f"\nRedis Cluster: {len(traffic.receipts())} posts over 3 masters, {prefix!r}")
