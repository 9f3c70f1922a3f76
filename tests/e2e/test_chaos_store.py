"""Chaos: the message store unavailable for 30 s under chat traffic.

The outage is what an SQLite store's outage looks like in production: another connection holds
the database's write lock (an operator's ``sqlite3`` shell left inside a transaction, a
maintenance job, a stuck writer), so every write fails with ``database is locked`` after the
busy timeout, while readers in WAL mode go on reading what is there. (Making the file
unwritable changes nothing for the descriptors already open, and root ignores it; an
exclusive-mode lock cannot even be taken while other connections hold the WAL database open.)

Meanwhile two posters post to one room without pause, through one gateway node whose recent
cache holds only ``RECENT`` messages, and the persist worker consumes. Asserted during the
outage: posting goes on (the broker takes the posts; a RECEIPT never waits for the store),
nothing new is stored, the worker's store calls fail and are retried (its queue keeps the
messages: nothing acked, nothing dead-lettered), and the history API answers a page that
reaches below the cache with ``503`` and ``Retry-After`` instead of a page with a gap. After
it: the worker resumes by itself, every receipted post is stored exactly once, and the same
history page is served whole. The catch-up time is printed.

``OUTAGE_SECONDS`` (environment ``STOMPGATE_TEST_STORE_OUTAGE_S``, default 30, as issue 18
asks) sets the outage's length.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import WorkerProcess, basic, room_name, store_rows
from tests.e2e.traffic import one_by_one
from tests.support import rabbit
from tests.support.stomp_client import Received, StompClient

OUTAGE_SECONDS = float(os.environ.get("STOMPGATE_TEST_STORE_OUTAGE_S", "30"))
RECENT = 20  # the node's recent cache per room: the outage outgrows it
USERS = ("p1", "p2")
DEV_USERS = ",".join(f"{u}:{u}" for u in USERS)
GATEWAY_ENV = {"STOMPGATE_FRAMES_PER_SECOND": "0", "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0"}
QUEUE = "stompgate.persist"


def _history(base_url: str, room: str, after: int) -> tuple[int, dict[str, str], object]:
    """(status, headers, JSON body) of one history page above ``after``."""
    request = urllib.request.Request(
        f"{base_url}/api/rooms/{room}/messages?after={after}&limit=200",
        headers={"Authorization": basic("p1", "p1")},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def _all_after(base_url: str, room: str, after: int) -> list[int]:
    ids: list[int] = []
    while True:
        status, _, body = _history(base_url, room, after)
        assert status == 200, (status, body)
        assert isinstance(body, dict)
        ids += [int(m["id"]) for m in body["messages"]]
        if body["next_after"] is None:
            return ids
        after = int(body["next_after"])


def _catch_up_error(port: int, room: str, after: int) -> Received:
    """The ERROR a catch-up SUBSCRIBE from ``after`` gets."""
    client = StompClient(port, login="p1", passcode="p1")
    client.connect()
    try:
        client.conn.subscribe(
            f"/topic/room.{room}", "c", headers={"cur-max-message-id": str(after)}
        )
        return client.next_error(20)
    finally:
        client.disconnect()


def _failures(worker: WorkerProcess) -> float:
    return worker.metric("stompgate_worker_handler_failures_total", worker="persist", queue=QUEUE)


@pytest.mark.chaos
@pytest.mark.timeout(60 + 2 * OUTAGE_SECONDS)
def test_store_unavailable_30_s_worker_retries_history_503_nothing_dropped(
    start_gateway: GatewayFactory,
    worker: WorkerProcess,
    store_path: Path,
    fresh_vhost: str,
) -> None:
    node = start_gateway(
        "store-a", "--chat-recent-limit", str(RECENT), "--dev-users", DEV_USERS, **GATEWAY_ENV
    )
    room = room_name("outage")
    posting = one_by_one(USERS, room, node.stomp_port, pause=0.01)
    posters = posting.posters
    posting.start()

    def receipted() -> int:
        return len(posting.receipts())

    # Before: posts flow and are stored.
    deadline = time.monotonic() + 30
    while len(store_rows(store_path, room)) < 2 * RECENT:
        assert time.monotonic() < deadline, "nothing stored before the outage"
        time.sleep(0.1)
    before_id = store_rows(store_path, room)[-1][0]
    assert _history(node.http_url, room, before_id)[0] == 200

    # The outage: another connection holds the write lock.
    lock = sqlite3.connect(store_path, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        stored_at_start = len(store_rows(store_path, room))
        receipted_at_start = receipted()
        failures_at_start = _failures(worker)
        refused: tuple[int, dict[str, str], object] | None = None
        catch_up_error: Received | None = None
        while time.monotonic() - started < OUTAGE_SECONDS:
            if refused is None and receipted() > receipted_at_start + 2 * RECENT:
                status, headers, body = _history(node.http_url, room, before_id)
                if status == 503:
                    refused = (status, headers, body)
                    catch_up_error = _catch_up_error(node.stomp_port, room, before_id)
            time.sleep(0.5)
        receipted_in_outage = receipted() - receipted_at_start
        stored_in_outage = len(store_rows(store_path, room)) - stored_at_start
        failures = _failures(worker) - failures_at_start
        queued = rabbit.queue_info(fresh_vhost, QUEUE)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    ended = time.monotonic()

    assert receipted_in_outage > 2 * RECENT  # posting went on: the RECEIPT needs the broker only
    # At most a batch written as the lock was taken; nothing after it.
    assert stored_in_outage == 0
    assert failures >= 1  # the worker's writes failed (busy timeout) and were retried
    waiting = int(queued.get("messages_unacknowledged", 0)) + int(queued.get("messages_ready", 0))
    assert waiting > 0  # not acked: the messages wait in the worker's queue
    assert refused is not None, "the history API served a page reaching below the cache"
    status, headers, body = refused
    assert headers.get("Retry-After", "").isdigit(), headers
    assert isinstance(body, dict)
    assert "behind" in body["error"]
    assert catch_up_error is not None  # so is a catch-up SUBSCRIBE, with an ERROR
    assert catch_up_error.headers["message"] == "History not available"

    # After: posting stops soon; everything receipted is stored once, history is whole.
    time.sleep(1.0)
    posting.stop()
    posting.join(30)
    assert [cid for p in posters for cid in p.silent] == []
    sent = receipted()
    deadline = time.monotonic() + 60
    while len(store_rows(store_path, room)) < sent:
        assert time.monotonic() < deadline, f"{len(store_rows(store_path, room))} of {sent} stored"
        time.sleep(0.2)
    caught_up = time.monotonic() - ended
    time.sleep(0.5)  # anything still arriving would be a duplicate
    rows = store_rows(store_path, room)
    keys = {(sender, cid) for _, _, sender, cid in rows}
    assert len(rows) == len(keys) == sent
    assert keys == posting.receipted()
    assert _all_after(node.http_url, room, before_id) == [r[0] for r in rows if r[0] > before_id]
    for reason in ("invalid", "exhausted"):
        dead = worker.metric(
            "stompgate_worker_messages_dead_lettered_total",
            worker="persist",
            queue=QUEUE,
            reason=reason,
        )
        assert dead == 0
    print(
        f"\nstore outage {OUTAGE_SECONDS:.0f} s: posts {sent} ({receipted_in_outage} receipted "
        f"during it, 0 stored), worker store failures retried {failures:.0f}, "
        f"{waiting} waiting in its queue at the end; all stored {caught_up:.2f} s after"
        f" the lock was released; history 503 Retry-After {headers['Retry-After']}"
    )
