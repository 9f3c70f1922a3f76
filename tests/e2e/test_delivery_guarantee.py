"""The end-to-end delivery guarantee, under load and failures.

10,000 messages from 50 clients (one user each, 5 rooms) across two gateway nodes, every SEND
with a receipt and a bounded window of SENDs in flight per client. Mid-run the persist worker
is SIGKILLed and restarted, and later one gateway node is SIGKILLed: its clients reconnect to
the other node and send every un-receipted message again with the same client_id. Afterwards:

* every receipted message is stored exactly once: one row per (sender, client_id), as many
  rows as receipts, nothing else;
* catch-up from random ids (SUBSCRIBE with cur-max-message-id, on the surviving node and on
  a restarted one, following ``stompgate-replay-more`` with the history API) and the history
  API itself return exactly the stored messages above that id, in order.

The store outage case (the worker stops acking while the store fails, then resumes, nothing
dropped) is tested at worker level: tests/workers/test_persist.py
::test_store_outage_loses_nothing.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import WorkerProcess, history_after, room_name, store_rows, wait_stored
from tests.e2e.traffic import Poster, Posters, stored_per_post
from tests.support.gateway_proc import GatewayProcess
from tests.support.stomp_client import StompClient

CLIENTS = 50
PER_CLIENT = 200
ROOMS = 5
WINDOW = 8  # SENDs in flight per client
USERS = [f"u{n:02d}" for n in range(CLIENTS)]
DEV_USERS = ",".join(["alice:alice", *(f"{u}:{u}" for u in USERS)])
GATEWAY_ENV = {
    "STOMPGATE_FRAMES_PER_SECOND": "0",  # the per-session rate limit would pace this test
    "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0",
}


def _catch_up(node: GatewayProcess, room: str, after: int) -> list[int]:
    """SUBSCRIBE with cur-max-message-id; follow stompgate-replay-more with the history API."""
    client = StompClient(node.stomp_port, login="alice", passcode="alice")
    client.connect()
    try:
        client.subscribe(f"/topic/room.{room}", "c", headers={"cur-max-message-id": str(after)})
        got: list[int] = []
        while True:
            try:
                msg = client.next_message(1.0)
            except TimeoutError:
                return got
            assert msg.headers.get("stompgate-replay") == "true"
            got.append(int(json.loads(msg.body)["id"]))
            if msg.headers.get("stompgate-replay-more") == "true":
                assert client.no_message(0.3)
                return got + history_after(node.http_url, room, got[-1])
    finally:
        client.disconnect()


@pytest.mark.slow
@pytest.mark.chaos
@pytest.mark.timeout(240)
def test_10k_messages_50_clients_two_nodes_worker_and_gateway_killed(
    start_gateway: GatewayFactory,
    worker: WorkerProcess,
    store_path: Path,
    log_dir: Path,
) -> None:
    started = time.monotonic()
    gw_a = start_gateway("big-a", "--dev-users", DEV_USERS, **GATEWAY_ENV)
    gw_b = start_gateway("big-b", "--dev-users", DEV_USERS, **GATEWAY_ENV)
    rooms = [room_name(f"big{n}") for n in range(ROOMS)]
    # Each client posts its messages in order, WINDOW at a time; on a lost connection it moves
    # to its other node and sends everything not yet receipted again (same client_id).
    posting = Posters(
        [
            Poster(
                user,
                rooms[n % ROOMS],
                [gw_a.stomp_port, gw_b.stomp_port] if n % 2 else [gw_b.stomp_port, gw_a.stomp_port],
                count=PER_CLIENT,
                window=WINDOW,
                receipt_wait=20,
                deadline=150,
            )
            for n, user in enumerate(USERS)
        ]
    )
    posters = posting.posters
    posting.start()

    total = CLIENTS * PER_CLIENT
    posting.wait_receipted(total // 4)
    worker.kill()  # SIGKILL: batches received and not acked come back to the next one
    posting.wait_receipted(total // 4 + total // 10)
    worker.start(log_dir)
    posting.wait_receipted(total // 4 + total // 10 + total // 4)
    # The clients on big-b with more left to post than can be receipted before the kill
    # lands (a window in flight, receipts already in their sockets) must move.
    moving = [
        p
        for p in posters
        if p.port == gw_b.stomp_port and PER_CLIENT - len(p.receipted) > 2 * WINDOW + 10
    ]
    gw_b.kill()  # SIGKILL: its clients move to big-a and send the un-receipted ones again
    posting.join(200)
    posted = time.monotonic()
    receipted = posting.receipted()
    assert len(receipted) == total
    assert moving, "every client on big-b had finished before it was killed"
    assert [p.user for p in moving if not p.reconnects] == []  # big-b's clients moved

    wait_stored(store_path, total, timeout=60)
    time.sleep(0.5)  # anything still arriving would be a duplicate (it could not be stored)
    per_key = stored_per_post(store_path)
    assert {key: len(rows) for key, rows in per_key.items() if len(rows) != 1} == {}
    assert set(per_key) == receipted
    rows = store_rows(store_path)
    assert len(rows) == total
    for row in rows:
        assert row[1] == rooms[USERS.index(row[2]) % ROOMS]

    # Catch-up from random ids, on the node that survived and on a freshly started one.
    gw_c = start_gateway("big-c", "--dev-users", DEV_USERS, **GATEWAY_ENV)
    nodes: list[GatewayProcess] = [gw_a, gw_c]
    rng = random.Random(5)
    for room in rooms:
        ids = [row[0] for row in store_rows(store_path, room)]
        assert len(ids) == total // ROOMS
        for after in [0, ids[-1], *rng.sample(ids, 2)]:
            node = rng.choice(nodes)
            expected = [i for i in ids if i > after]
            assert _catch_up(node, room, after) == expected
            assert history_after(rng.choice(nodes).http_url, room, after) == expected
    print(
        f"\n10k test: posted in {posted - started:.1f} s, verified in "
        f"{time.monotonic() - posted:.1f} s, reconnects {sum(p.reconnects for p in posters)}"
    )
