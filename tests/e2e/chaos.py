"""Traffic for chaos tests: posters that retry until receipted, a reader that catches up after
every reconnect, and the exact accounting both keep (sent, receipted, errors, delivered).

A `ChaosPoster` posts one message at a time to a room, each with a receipt and a fresh
``client_id``; every SEND ends in exactly one of: a RECEIPT, an ERROR frame (then it reconnects
and sends the same ``client_id`` again), or a *silent* end (the socket closed with neither, or
nothing at all within ``silence`` seconds), which the tests count and require to be zero.

A `ChaosReader` subscribes to the room with ``cur-max-message-id`` set to the last id it saw
(nothing on its first SUBSCRIBE), so every reconnect replays what it missed, then live
messages; a replay that says ``stompgate-replay-more`` is completed from the history API. It
records every message's ``client_id`` and id.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field

import stomp.exception

from tests.e2e.procs import basic, http_get, post_body
from tests.support.stomp_client import StompClient

_LOST = (stomp.exception.StompException, OSError, TimeoutError)


@dataclass
class ChaosPoster:
    user: str
    room: str
    port: int
    pause: float = 0.005  # between two posts
    silence: float = 30.0  # a SEND with no answer for this long is a silent drop
    posted: list[str] = field(default_factory=list)  # client ids, each receipted once
    attempts: int = 0  # SEND frames written
    errors: int = 0  # SENDs answered with an ERROR
    silent: list[str] = field(default_factory=list)
    reconnects: int = 0
    failure: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    progress: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def receipted_since(self, count: int, timeout: float) -> bool:
        """Wait until more than ``count`` posts are receipted."""
        with self.progress:
            return self.progress.wait_for(lambda: len(self.posted) > count, timeout)

    def _run(self) -> None:
        client = self._connect()
        number = 0
        while not self.stop.is_set():
            cid = f"{self.user}-{number}"
            while True:  # the same client id until it is receipted
                outcome = self._send(client, cid)
                if outcome == "receipt":
                    break
                with contextlib.suppress(*_LOST):
                    client.conn.disconnect()
                self.reconnects += 1
                time.sleep(0.1)
                client = self._connect()
            with self.progress:
                self.posted.append(cid)
                self.progress.notify_all()
            number += 1
            time.sleep(self.pause)
        with contextlib.suppress(*_LOST):
            client.disconnect()

    def _connect(self) -> StompClient:
        deadline = time.monotonic() + 60
        while True:
            client = StompClient(self.port, login=self.user, passcode=self.user)
            try:
                client.connect()
                return client
            except _LOST:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _send(self, client: StompClient, cid: str) -> str:
        listener = client.listener
        rid = f"p-{cid}"
        try:
            client.conn.send(
                f"/app/rooms/{self.room}/messages",
                post_body(f"{self.user} says {cid}", cid),
                headers={"receipt": rid},
            )
        except _LOST:
            # Not written: the socket had gone (an ERROR may have come before it).
            return "error" if listener.got_error.is_set() else "unsent"
        self.attempts += 1
        deadline = time.monotonic() + self.silence
        with listener.receipt_cond:
            while rid not in listener.receipts:
                if listener.got_error.is_set():
                    self.errors += 1
                    return "error"
                if listener.disconnected.is_set() or time.monotonic() > deadline:
                    # Closed (or nothing) without an ERROR: the SEND vanished.
                    self.silent.append(cid)
                    return "silent"
                listener.receipt_cond.wait(0.05)
        return "receipt"


@dataclass
class ChaosReader:
    user: str
    room: str
    port: int
    http_url: str
    ids: dict[str, int] = field(default_factory=dict)  # client id -> message id
    copies: int = 0  # MESSAGEs received in all (a copy seen twice counts twice)
    last_id: int = 0
    reconnects: int = 0
    subscribed_after: list[int] = field(default_factory=list)  # cur-max-message-id each time
    told: list[str] = field(default_factory=list)  # the `message` of each ERROR it got
    failure: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.failure = exc

    def _run(self) -> None:
        # The listener's queues are read directly: StompClient's waits drain the ERROR queue
        # into their timeout messages, and a refused SUBSCRIBE must not wait for its receipt.
        while not self.stop.is_set():
            client = StompClient(self.port, login=self.user, passcode=self.user)
            listener = client.listener
            try:
                client.connect()
                if self._subscribe(client):
                    while not self.stop.is_set():
                        if listener.got_error.is_set() or listener.disconnected.is_set():
                            break
                        try:
                            message = listener.messages.get(timeout=0.2)
                        except queue.Empty:
                            continue
                        if message.headers.get("event-type") != "message":
                            continue
                        event = json.loads(message.body)
                        self._record(event)
                        if message.headers.get("stompgate-replay-more") == "true":
                            self._history_after(int(event["id"]))
            except _LOST:
                pass
            finally:
                while not listener.errors.empty():
                    self.told.append(listener.errors.get().headers.get("message", ""))
                with contextlib.suppress(*_LOST):
                    client.conn.disconnect()
            if not self.stop.is_set():
                self.reconnects += 1
                time.sleep(0.2)

    def _subscribe(self, client: StompClient) -> bool:
        """SUBSCRIBE (catching up from ``last_id``); False if refused or cut off."""
        headers = {"receipt": f"s-{self.reconnects}"}
        if self.last_id:
            headers["cur-max-message-id"] = str(self.last_id)
        self.subscribed_after.append(self.last_id)
        client.conn.subscribe(f"/topic/room.{self.room}", "chaos", headers=headers)
        listener = client.listener
        deadline = time.monotonic() + 10
        with listener.receipt_cond:
            while headers["receipt"] not in listener.receipts:
                if listener.got_error.is_set() or listener.disconnected.is_set():
                    return False
                if time.monotonic() > deadline:
                    return False
                listener.receipt_cond.wait(0.05)
        return True

    def _record(self, event: dict[str, object]) -> None:
        message_id = int(str(event["id"]))
        self.copies += 1
        self.ids.setdefault(str(event["client_id"]), message_id)
        self.last_id = max(self.last_id, message_id)

    def _history_after(self, after: int) -> None:
        """Complete a replay from the history API (503 while the store is behind: retry)."""
        deadline = time.monotonic() + 60
        cursor = after
        while True:
            status, _, body = http_get(
                f"{self.http_url}/api/rooms/{self.room}/messages?after={cursor}&limit=200",
                auth=basic(self.user, self.user),
            )
            if status == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            assert status == 200, (status, body)
            for event in body["messages"]:
                self._record(event)
            if body["next_after"] is None:
                return
            cursor = int(body["next_after"])
