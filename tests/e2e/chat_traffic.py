"""Chat traffic for chaos tests: posters that keep posting with receipts through failures,
readers that record every message delivered live, and the exact accounting afterwards.

A `Poster` posts in one room, one SEND in flight with a receipt; an ERROR or a lost
connection makes it reconnect (to the next node) and send the same post again, same client
id, until it is receipted. It records when each post was receipted and under which id (the
RECEIPT's ``message-id``). A `Reader` subscribes to rooms on one node and records every
``event-type: message`` it gets.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import stomp.exception

from tests.e2e.procs import post_body
from tests.support.stomp_client import StompClient

RECEIPT_WAIT = 10.0
"""Seconds a poster waits for one receipt before it takes the connection as lost."""


class LostError(Exception):
    pass


@dataclass
class Receipted:
    client_id: str
    message_id: int
    sent: float  # time.monotonic() of the SEND that was receipted
    at: float  # time.monotonic() of the RECEIPT


@dataclass
class Poster:
    user: str
    passcode: str
    room: str
    ports: list[int]
    stop: threading.Event
    receipted: list[Receipted] = field(default_factory=list)
    sent: int = 0  # distinct posts sent (a retry of one is not another)
    refusals: int = 0  # ERROR frames and lost connections
    error: BaseException | None = None
    deadline: float = 120.0

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        give_up = time.monotonic() + self.deadline
        port = 0
        client: StompClient | None = None
        n = 0
        while not self.stop.is_set():
            cid = f"{self.user}-{n}"
            self.sent += 1
            while True:  # until this post is receipted
                if time.monotonic() > give_up:
                    raise TimeoutError(f"{self.user}: {cid} never receipted")
                try:
                    if client is None:
                        client = self._connect(self.ports[port % len(self.ports)])
                    self.receipted.append(self._post(client, cid))
                    break
                except (LostError, stomp.exception.StompException, OSError):
                    self.refusals += 1
                    _quietly_disconnect(client)
                    client = None
                    port += 1
                    time.sleep(0.1)
            n += 1
        _quietly_disconnect(client)

    def _connect(self, port: int) -> StompClient:
        client = StompClient(port, login=self.user, passcode=self.passcode)
        try:
            client.connect()
        except BaseException:
            _quietly_disconnect(client)
            raise
        return client

    def _post(self, client: StompClient, cid: str) -> Receipted:
        receipt = f"r-{cid}"
        sent = time.monotonic()
        client.conn.send(
            f"/app/rooms/{self.room}/messages",
            post_body(f"{self.user} says {cid}", cid),
            headers={"receipt": receipt},
        )
        listener = client.listener
        deadline = time.monotonic() + RECEIPT_WAIT
        with listener.receipt_cond:
            while receipt not in listener.receipts:
                if listener.disconnected.is_set() or not listener.errors.empty():
                    raise LostError(cid)
                if time.monotonic() > deadline:
                    raise LostError(f"no receipt for {cid}")
                listener.receipt_cond.wait(0.05)
            headers = listener.receipt_headers[receipt]
        return Receipted(cid, int(headers["stompgate-message-id"]), sent, time.monotonic())


def _quietly_disconnect(client: StompClient | None) -> None:
    if client is not None:
        with contextlib.suppress(stomp.exception.StompException, OSError):
            client.disconnect()


class Reader:
    """Subscribed to ``rooms`` on one node; ``ids`` every message id delivered, per room."""

    def __init__(self, port: int, user: str, passcode: str, rooms: list[str]) -> None:
        self.client = StompClient(port, login=user, passcode=passcode)
        self.client.connect()
        self.ids: dict[str, list[int]] = {room: [] for room in rooms}
        self.by_sub = {f"s{n}": room for n, room in enumerate(rooms)}
        for sub, room in self.by_sub.items():
            self.client.subscribe(f"/topic/room.{room}", sub)

    def drain(self) -> None:
        """Record what has arrived so far."""
        queue = self.client.listener.messages
        while not queue.empty():
            msg = queue.get_nowait()
            if msg.headers.get("event-type") == "message":
                room = self.by_sub[msg.headers["subscription"]]
                self.ids[room].append(int(json.loads(msg.body)["id"]))

    @property
    def lost_connection(self) -> bool:
        return self.client.listener.disconnected.is_set()

    def close(self) -> None:
        _quietly_disconnect(self.client)


def stored(path: Path) -> list[tuple[int, str, str, str]]:
    """(id, room, sender, client_id) of every stored message, by id."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT id, room, sender, client_id FROM messages ORDER BY id")
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows.fetchall()]
    finally:
        conn.close()


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.1)
