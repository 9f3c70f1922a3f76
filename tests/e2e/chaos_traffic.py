"""Traffic for chaos tests: posters that resend what was not receipted, readers that reconnect
with ``cur-max-message-id``, and the checks every chaos test makes with exact counts.

A :class:`Poster` posts its messages to one room, ``window`` SENDs in flight, each with a
receipt; when its connection fails or a receipt does not come, it reconnects (to the next of its
nodes) and sends everything not yet receipted again with the same ``client_id``. A
:class:`Reader` subscribes to one room; when its session ends (the gateway closes every session
when it loses the broker) it subscribes again with ``cur-max-message-id`` = the highest id it
has, follows ``stompgate-replay-more`` with the history API, and goes on live.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import stomp.exception

from tests.e2e.procs import history, post_body
from tests.support.stomp_client import StompClient


class ConnectionLostError(Exception):
    pass


def _quietly_disconnect(client: StompClient) -> None:
    with contextlib.suppress(stomp.exception.StompException, OSError, TimeoutError):
        client.disconnect()


@dataclass
class Poster:
    user: str
    room: str
    ports: list[int]
    count: int
    window: int = 4
    deadline_s: float = 120.0
    receipted: list[str] = field(default_factory=list)
    receipt_times: list[float] = field(default_factory=list)
    sends: int = 0  # SEND frames, resends included
    reconnects: int = 0
    error: BaseException | None = None

    def run(self, progress: threading.Semaphore) -> None:
        try:
            self._run(progress)
        except BaseException as exc:
            self.error = exc

    def _run(self, progress: threading.Semaphore) -> None:
        todo = deque(f"{self.user}-{n}" for n in range(self.count))
        in_flight: deque[str] = deque()
        deadline = time.monotonic() + self.deadline_s
        node = 0
        client = self._connect(node, deadline)
        while todo or in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.user}: {len(todo) + len(in_flight)} not receipted")
            try:
                while todo and len(in_flight) < self.window:
                    cid = todo[0]
                    client.conn.send(
                        f"/app/rooms/{self.room}/messages",
                        post_body(f"{self.user} says {cid}", cid),
                        headers={"receipt": cid},
                    )
                    self.sends += 1
                    in_flight.append(todo.popleft())
                _wait_receipt(client, in_flight[0])
                self.receipted.append(in_flight.popleft())
                self.receipt_times.append(time.monotonic())
                progress.release()
            except (ConnectionLostError, stomp.exception.StompException, OSError):
                todo.extendleft(reversed(in_flight))  # again, in order, same client_id
                in_flight.clear()
                _quietly_disconnect(client)
                self.reconnects += 1
                node = (node + 1) % len(self.ports)
                time.sleep(0.2)
                client = self._connect(node, deadline)
        _quietly_disconnect(client)

    def _connect(self, node: int, deadline: float) -> StompClient:
        while True:
            client = StompClient(self.ports[node], login=self.user, passcode=self.user)
            try:
                client.connect()
                return client
            except (stomp.exception.StompException, OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                node = (node + 1) % len(self.ports)
                time.sleep(0.2)


def _wait_receipt(client: StompClient, receipt_id: str) -> None:
    listener = client.listener
    deadline = time.monotonic() + 20
    with listener.receipt_cond:
        while receipt_id not in listener.receipts:
            if listener.disconnected.is_set() or not listener.errors.empty():
                raise ConnectionLostError(receipt_id)
            if time.monotonic() > deadline:
                raise ConnectionLostError(f"no receipt {receipt_id}")
            listener.receipt_cond.wait(0.1)


@dataclass
class Reader:
    """One device reading one room: live, and by catch-up after every lost session."""

    room: str
    port: int
    http_url: str
    seen: dict[int, str] = field(default_factory=dict)  # message id -> client_id
    live: int = 0
    replayed: int = 0
    duplicates: int = 0  # the same id twice (live after replay, say)
    sessions: int = 0
    refused: int = 0  # catch-ups refused (the store behind, the broker down)
    error: BaseException | None = None
    subscribed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def max_id(self) -> int:
        return max(self.seen, default=0)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self._session()
        except BaseException as exc:
            self.error = exc

    def _take(self, message_id: int, client_id: str, *, replay: bool) -> None:
        if message_id in self.seen:
            self.duplicates += 1
            return
        self.seen[message_id] = client_id
        if replay:
            self.replayed += 1
        else:
            self.live += 1

    def _session(self) -> None:
        client = StompClient(self.port, login="alice", passcode="alice")
        try:
            client.connect()
            headers = {"cur-max-message-id": str(self.max_id)} if self.seen else {}
            headers["receipt"] = receipt = f"sub-{self.sessions}-{self.refused}"
            # An ERROR (catch-up refused: the store is behind, the broker is down) ends the
            # wait at once; StompClient.subscribe would wait out its receipt timeout.
            client.subscribe(f"/topic/room.{self.room}", "r", receipt=False, headers=headers)
            _wait_receipt(client, receipt)
        except (stomp.exception.StompException, OSError, TimeoutError, ConnectionLostError):
            self.refused += 1
            _quietly_disconnect(client)
            time.sleep(0.3)
            return
        self.sessions += 1
        self.subscribed.set()
        listener = client.listener
        try:
            while not self.stop.is_set():
                if listener.disconnected.is_set() or not listener.errors.empty():
                    return
                try:
                    msg = client.next_message(0.2)
                except TimeoutError:
                    continue
                body = json.loads(msg.body)
                replay = msg.headers.get("stompgate-replay") == "true"
                self._take(int(body["id"]), str(body.get("client_id")), replay=replay)
                if msg.headers.get("stompgate-replay-more") == "true":
                    self._history(int(body["id"]))
        finally:
            _quietly_disconnect(client)

    def _history(self, after: int) -> None:
        cursor = after
        while True:
            page = history(self.http_url, self.room, after=cursor, limit=200)
            for m in page["messages"]:
                self._take(int(m["id"]), str(m.get("client_id")), replay=True)
            if page["next_after"] is None:
                return
            cursor = int(page["next_after"])


def stored_per_post(store: Path) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(sender, client_id) -> [(id, room), ...] of every stored message."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT sender, client_id, id, room FROM messages").fetchall()
    finally:
        conn.close()
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for sender, client_id, message_id, room in rows:
        found.setdefault((str(sender), str(client_id)), []).append((int(message_id), str(room)))
    return found
