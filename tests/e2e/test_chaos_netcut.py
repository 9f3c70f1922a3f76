"""Chaos: the network between a gateway node (and the persist worker) and RabbitMQ is cut,
then black-holed, through a TCP proxy the test controls (tests/support/tcp_proxy.py).

One node and the persist worker reach the shared RabbitMQ (a private vhost) only through the
proxy, both with a 2 s AMQP heart-beat. Two posters and a reader use the node over STOMP (not
through the proxy) on one room, all the time:

1. *cut*: both sides of every broker connection get a reset. The node notices at once, tells
   every client (ERROR ``Broker connection lost``, then close), answers SENDs with an ERROR
   while the broker is away, and reconnects by itself when the path is back.
2. *black-hole*: the sockets stay open and nothing passes: only the heart-beats notice. The
   node must find out by itself (``/readyz`` turns 503 within a few heart-beat intervals),
   tell its clients, and reconnect once the path is back.

Afterwards, exactly: every post was receipted (posters send the same client_id again after
an ERROR), none vanished silently (a SEND ends in a RECEIPT or an ERROR), every receipted post
is stored once and only receipted posts are stored, and the reader, catching up with
``cur-max-message-id`` after each reconnect, saw every one. The detection and recovery times
are printed.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import WorkerProcess, room_name, store_rows
from tests.e2e.traffic import Reader, one_by_one, wait_for
from tests.support.gateway_proc import GatewayProcess
from tests.support.tcp_proxy import TcpProxy

HEARTBEAT = 2  # seconds: the node notices a black hole in about 2-3 of them, aio-pika in 5
CUT_SECONDS = 2.0
BLACKHOLE_SECONDS = 12.0  # long enough for the worker's heart-beats to notice too
USERS = ("p1", "p2", "reader")
DEV_USERS = ",".join(f"{u}:{u}" for u in USERS)
GATEWAY_ENV = {"STOMPGATE_FRAMES_PER_SECOND": "0", "STOMPGATE_MAX_CONNECTIONS_PER_IP": "0"}


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _ready(process: GatewayProcess | WorkerProcess) -> bool:
    """The node's /readyz (connected to RabbitMQ), the worker's /healthz (consuming)."""
    if isinstance(process, GatewayProcess):
        url = process.http_url + "/readyz"
    else:
        url = f"http://127.0.0.1:{process.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def proxy(e2e_vhost_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(urlsplit(e2e_vhost_url).port or 5672) as running:
        yield running


@pytest.mark.chaos
@pytest.mark.timeout(150)
def test_network_cut_and_black_hole_between_node_and_broker(
    start_gateway: GatewayFactory,
    proxy: TcpProxy,
    e2e_vhost_url: str,
    store_url: str,
    store_path: Path,
    log_dir: Path,
) -> None:
    url = _through(e2e_vhost_url, proxy.port)
    worker = WorkerProcess(
        amqp_url=url, store_url=store_url, env={"STOMPGATE_AMQP_HEARTBEAT": str(HEARTBEAT)}
    )
    worker.start(log_dir)
    try:
        node = start_gateway(
            "cut-a",
            "--amqp-url",
            url,
            "--amqp-heartbeat",
            str(HEARTBEAT),
            "--dev-users",
            DEV_USERS,
            **GATEWAY_ENV,
        )
        _run(node, proxy, worker, store_path)
    finally:
        worker.stop()


def _run(node: GatewayProcess, proxy: TcpProxy, worker: WorkerProcess, store_path: Path) -> None:
    room = room_name("cut")
    # The reader completes a long replay from the history API, which may answer 503 for a
    # while (the worker behind).
    reader = Reader("reader", node.stomp_port, [room], http_url=node.http_url, history_wait=60)
    posting = one_by_one(("p1", "p2"), room, node.stomp_port, pause=0.005)
    posters = posting.posters
    reading = threading.Thread(target=reader.run, daemon=True)
    reading.start()
    time.sleep(0.5)  # the reader subscribes first (it would replay what it missed anyway)
    posting.start()

    def flowing(seconds: float = 30.0) -> float:
        """Seconds until each poster has a post receipted that it had not before."""
        started = time.monotonic()
        marks = [len(p.receipted) for p in posters]
        for poster, mark in zip(posters, marks, strict=True):
            assert poster.wait_more_than(mark, seconds), f"{poster.user} stalled"
        return time.monotonic() - started

    flowing()
    time.sleep(1.0)

    # 1. A hard cut: resets on both sides.
    proxy.cut()
    cut_seen = wait_for(lambda: not _ready(node), 10, "the node noticing the cut")
    time.sleep(CUT_SECONDS)
    errors_during_cut = sum(p.errors for p in posters)
    proxy.restore()
    cut_ready = wait_for(lambda: _ready(node), 30, "the node reconnecting after the cut")
    cut_flowing = flowing()
    time.sleep(1.0)

    # 2. A black hole: nothing passes, nothing is closed; only heart-beats can tell.
    proxy.blackhole()
    hole_seen = wait_for(lambda: not _ready(node), 6 * HEARTBEAT + 5, "heart-beats noticing")
    worker_seen = hole_seen + wait_for(
        lambda: not _ready(worker), 6 * HEARTBEAT + 5, "the worker's heart-beats noticing"
    )
    time.sleep(max(0.0, BLACKHOLE_SECONDS - worker_seen))
    proxy.restore()
    hole_ready = wait_for(lambda: _ready(node), 30, "the node reconnecting after the black hole")
    hole_flowing = flowing()
    worker_back = wait_for(lambda: _ready(worker), 30, "the worker reconnecting")
    time.sleep(1.0)

    posting.stop()
    posting.join(40)
    assert reader.failure is None, reader.failure

    receipted = posting.receipted()
    sent = sum(len(p.receipted) for p in posters)
    assert len(receipted) == sent  # each client id receipted once: retried until it was
    assert [cid for p in posters for cid in p.silent] == []  # no SEND vanished
    assert errors_during_cut > 0  # the cut was felt (SENDs answered with an ERROR)

    # Stored: each receipted post once, nothing else (retries share their client id).
    deadline = time.monotonic() + 60
    while len(store_rows(store_path, room)) < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    rows = store_rows(store_path, room)
    stored = {(sender, cid) for _, _, sender, cid in rows}
    assert len(rows) == len(stored) == sent
    assert stored == receipted
    assert [row for row in store_rows(store_path) if row[1] != room] == []
    for reason in ("invalid", "exhausted"):
        assert (
            worker.metric(
                "stompgate_worker_messages_dead_lettered_total",
                worker="persist",
                queue="stompgate.persist",
                reason=reason,
            )
            == 0
        )

    # Delivered: the reader, catching up after every reconnect, saw every receipted post.
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: len(reader.client_ids(room)) >= sent, 30, "the reader catching up")
    reader.stop.set()
    reading.join(10)
    assert reader.failure is None, reader.failure
    got = reader.client_ids(room)
    by_cid = {cid: row[0] for row in rows for cid in [row[3]]}
    missing = sorted((by_cid[cid], cid) for cid in by_cid.keys() - got.keys())
    assert not missing, (missing, reader.subscribed_after, reader.highest[room])
    assert set(got) == {cid for _, cid in receipted}
    assert reader.told.count("Broker connection lost") >= 2, reader.told  # told of both

    print(
        f"\nnetwork cut: posts {sent} (SENDs {sum(p.sends for p in posters)}, ERRORs "
        f"{sum(p.errors for p in posters)}, reconnects {sum(p.reconnects for p in posters)}), "
        f"stored {len(rows)}, delivered {len(got)} ({reader.copies} copies, "
        f"{reader.duplicates} twice, {reader.out_of_order} out of order; reader sessions "
        f"{reader.sessions}, refused {reader.refused}, ERRORs {sorted(set(reader.told))}); "
        f"cut seen in "
        f"{cut_seen:.2f} s, ready "
        f"{cut_ready:.2f} s after restore, posts flowing {cut_flowing:.2f} s later; black "
        f"hole seen in {hole_seen:.2f} s (heart-beat {HEARTBEAT} s), ready {hole_ready:.2f} s "
        f"after restore, posts flowing {hole_flowing:.2f} s later; the worker saw it in "
        f"{worker_seen:.2f} s and was consuming again {worker_back:.2f} s after the posts"
    )
