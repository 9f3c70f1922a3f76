"""Subscribe-time catch-up (``cur-max-message-id``) on another node than the one that took
the messages: exactly the missed ones, in order, then live ones; no gap, no duplicate."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from pathlib import Path

import redis
import stomp.exception

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import (
    WorkerProcess,
    http_get,
    post_body,
    room_name,
    store_rows,
    wait_stored,
)
from tests.support.stomp_client import Received, StompClient, stomp_client

FAST = {"STOMPGATE_FRAMES_PER_SECOND": "0"}


def _topic(room: str) -> str:
    return f"/topic/room.{room}"


def _id(msg: Received) -> int:
    return int(json.loads(msg.body)["id"])


def _post_all(port: int, room: str, count: int, login: str = "alice") -> list[str]:
    """``count`` receipted posts; their client ids."""
    client_ids = [f"{login}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    with stomp_client(port, login=login, passcode=login) as client:
        for n, cid in enumerate(client_ids):
            client.send(f"/app/rooms/{room}/messages", post_body(f"m{n}", cid))
    return client_ids


def _catch_up(client: StompClient, room: str, after: int, sub_id: str = "c") -> None:
    client.subscribe(_topic(room), sub_id, headers={"cur-max-message-id": str(after)})


def test_catch_up_on_another_node_then_live(
    start_gateway: GatewayFactory, worker: WorkerProcess
) -> None:
    gw_a = start_gateway("gw-a")
    gw_b = start_gateway("gw-b")
    room = room_name()
    with stomp_client(gw_a.stomp_port, login="bob", passcode="bob") as watcher:
        watcher.subscribe(_topic(room), "w")
        _post_all(gw_a.stomp_port, room, 30)
        ids = [_id(m) for m in watcher.messages(30)]
    assert ids == sorted(ids)
    with stomp_client(gw_b.stomp_port, login="bob", passcode="bob") as bob:
        _catch_up(bob, room, ids[9])
        replayed = bob.messages(20)
        assert [_id(m) for m in replayed] == ids[10:]
        assert all(m.headers.get("stompgate-replay") == "true" for m in replayed)
        assert all(m.headers["sender"] == "alice" for m in replayed)
        assert bob.no_message(0.3)
        # then live ones, from either node
        _post_all(gw_a.stomp_port, room, 2)
        _post_all(gw_b.stomp_port, room, 2, login="guest")
        live = bob.messages(4)
        assert all("stompgate-replay" not in m.headers for m in live)
        assert min(_id(m) for m in live) > ids[-1]
        assert bob.no_message(0.5)
        # caught up already: nothing to replay
    with stomp_client(gw_b.stomp_port, login="bob", passcode="bob") as bob:
        _catch_up(bob, room, max(_id(m) for m in live))
        assert bob.no_message(0.5)


def test_catch_up_while_messages_keep_coming(
    start_gateway: GatewayFactory, worker: WorkerProcess
) -> None:
    """Publishers on both nodes never pause while devices re-subscribe with catch-up on both
    nodes: each device gets every message above its id once, and each sender's in order."""
    gw_a = start_gateway("gw-a", **FAST)
    gw_b = start_gateway("gw-b", **FAST)
    nodes = [gw_a, gw_b]
    room = room_name("race")
    per_publisher = 300
    watcher = StompClient(gw_a.stomp_port, login="bob", passcode="bob")
    watcher.connect()
    watcher.subscribe(_topic(room), "w")
    seen: list[int] = []  # what the watcher got so far (grows while publishing)
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                seen.append(_id(watcher.next_message(0.1)))

    def publish(port: int, login: str) -> None:
        with stomp_client(port, login=login, passcode=login) as client:
            # Pipelined: the next SEND goes out before the previous RECEIPT is back.
            pending: list[str] = []
            for n in range(per_publisher):
                rid = f"{login}-{n}"
                body = post_body(f"{login}{n}", f"{login}-{n}")
                client.conn.send(f"/app/rooms/{room}/messages", body, headers={"receipt": rid})
                pending.append(rid)
                if len(pending) >= 8:
                    client.wait_receipt(pending.pop(0))
            for rid in pending:
                client.wait_receipt(rid)

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    publishers = [
        threading.Thread(target=publish, args=(gw_a.stomp_port, "alice"), daemon=True),
        threading.Thread(target=publish, args=(gw_b.stomp_port, "guest"), daemon=True),
    ]
    for t in publishers:
        t.start()
    devices: list[tuple[int, StompClient]] = []
    try:
        while len(seen) < 20:
            time.sleep(0.01)
        for n in range(8):
            after = seen[-1 - (n % 3) * 5]  # a few messages back, still being published
            device = StompClient(nodes[n % 2].stomp_port, login="bob", passcode="bob")
            device.connect()
            _catch_up(device, room, after, sub_id=f"d{n}")
            devices.append((after, device))
            time.sleep(0.05)
        for t in publishers:
            t.join(60)
        total = 2 * per_publisher
        deadline = time.monotonic() + 20
        while len(seen) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        collector.join(5)
        assert len(seen) == total
        every = set(seen)
        assert len(every) == total
        for after, device in devices:
            got: list[Received] = []
            expected = {i for i in every if i > after}
            deadline = time.monotonic() + 20
            while {_id(m) for m in got} < expected and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    got.append(device.next_message(0.5))
            assert device.no_message(0.3)
            got_ids = [_id(m) for m in got]
            assert len(got_ids) == len(set(got_ids)), "a duplicate"
            assert {i for i in got_ids if i > after} == expected, "a gap"
            replay = [_id(m) for m in got if m.headers.get("stompgate-replay") == "true"]
            assert replay == sorted(replay)
            assert all(i > after for i in replay)
            for sender in ("alice", "guest"):
                mine = [_id(m) for m in got if m.headers["sender"] == sender]
                assert mine == sorted(mine), f"{sender}'s messages out of order"
    finally:
        stop.set()
        for _, device in devices:
            device.disconnect()
        watcher.disconnect()


def test_replay_beyond_the_recent_cache_comes_from_the_store(
    start_gateway: GatewayFactory,
    worker: WorkerProcess,
    store_path: Path,
    redis_keys: redis.Redis,
    redis_prefix: str,
) -> None:
    small = {"STOMPGATE_CHAT_RECENT_LIMIT": "20", **FAST}
    gw_a = start_gateway("gw-a", **small)
    gw_b = start_gateway("gw-b", **small)
    room = room_name("deep")
    _post_all(gw_a.stomp_port, room, 100)
    wait_stored(store_path, 100, room=room)
    ids = [row[0] for row in store_rows(store_path, room)]
    assert len(ids) == 100
    assert redis_keys.zcard(f"{redis_prefix}room:{room}:recent") == 20
    for after in (0, ids[4], ids[50], ids[79], ids[80], ids[98]):
        with stomp_client(gw_b.stomp_port, login="bob", passcode="bob") as bob:
            _catch_up(bob, room, after)
            expected = [i for i in ids if i > after]
            got = [_id(m) for m in bob.messages(len(expected))] if expected else []
            assert got == expected
            assert bob.no_message(0.2)


def test_a_bad_catch_up_header_is_refused(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-bad")
    client = StompClient(gw.stomp_port, login="bob", passcode="bob")
    client.connect()
    try:
        client.conn.subscribe(
            _topic(room_name()), "c", headers={"cur-max-message-id": "12x", "receipt": "r1"}
        )
        error = client.next_error()
        assert error.headers["message"] == "Invalid header"
        assert error.body.startswith("invalid cur-max-message-id header: '12x'\n")
        assert "r1" not in client.listener.receipts  # refused before anything was bound
    finally:
        with contextlib.suppress(stomp.exception.StompException, OSError):
            client.disconnect()


def test_catch_up_is_refused_while_the_store_is_behind_then_served_whole(
    start_gateway: GatewayFactory, worker: WorkerProcess, store_path: Path, log_dir: Path
) -> None:
    """The persist worker is down while 30 messages are posted and the cache keeps 10: a
    catch-up from 0 would skip 20 of them, so it is refused (ERROR, nothing receipted) and
    so is the history API (503); once the worker stored them, the same catch-up gets all."""
    gw = start_gateway("gw-a", STOMPGATE_CHAT_RECENT_LIMIT="10", **FAST)
    room = room_name("behind")
    worker.stop()  # its durable queue stays bound and keeps what is published meanwhile
    _post_all(gw.stomp_port, room, 30)
    assert store_rows(store_path, room) == []
    client = StompClient(gw.stomp_port, login="bob", passcode="bob")
    client.connect()
    try:
        client.conn.subscribe(
            _topic(room), "c", headers={"cur-max-message-id": "0", "receipt": "r1"}
        )
        error = client.next_error()
        assert error.headers["message"] == "History not available"
        assert error.body.startswith(
            "history not available yet: the message store is behind; retry shortly\n"
        )
        assert "r1" not in client.listener.receipts
        assert client.no_message(0.3)
    finally:
        with contextlib.suppress(stomp.exception.StompException, OSError):
            client.disconnect()
    status, _, body = http_get(f"{gw.http_url}/api/rooms/{room}/messages?after=0")
    assert status == 503
    assert "store is behind" in body["error"]

    worker.start(log_dir)
    wait_stored(store_path, 30, room=room)
    ids = [row[0] for row in store_rows(store_path, room)]
    with stomp_client(gw.stomp_port, login="bob", passcode="bob") as bob:
        _catch_up(bob, room, 0)
        assert [_id(m) for m in bob.messages(30)] == ids
        assert bob.no_message(0.3)
    status, _, body = http_get(f"{gw.http_url}/api/rooms/{room}/messages?after=0")
    assert status == 200
    assert [int(m["id"]) for m in body["messages"]] == ids
