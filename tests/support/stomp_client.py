"""A blocking test client on top of stomp.py (the real third-party STOMP client over TCP)."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import stomp


@dataclass(frozen=True)
class Received:
    command: str
    headers: dict[str, str]
    body: str


class RecordingListener(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.errors: queue.Queue[Received] = queue.Queue()
        self.receipts: set[str] = set()
        self.receipt_headers: dict[str, dict[str, str]] = {}  # receipt id -> the RECEIPT's
        self.receipt_cond = threading.Condition()
        self.disconnected = threading.Event()
        self.got_error = threading.Event()

    def on_message(self, frame: Any) -> None:
        self.messages.put(Received("MESSAGE", dict(frame.headers), frame.body))

    def on_error(self, frame: Any) -> None:
        self.got_error.set()
        self.errors.put(Received("ERROR", dict(frame.headers), frame.body))

    def on_receipt(self, frame: Any) -> None:
        with self.receipt_cond:
            self.receipts.add(frame.headers["receipt-id"])
            self.receipt_headers[frame.headers["receipt-id"]] = dict(frame.headers)
            self.receipt_cond.notify_all()

    def on_disconnected(self) -> None:
        self.disconnected.set()


#: stomp.py's connection class for each STOMP version (1.0 has no heart-beats).
_CONNECTIONS: dict[str, Any] = {
    "1.0": stomp.Connection10,
    "1.1": stomp.Connection11,
    "1.2": stomp.Connection12,
}


class StompClient:
    """stomp.py's Connection12 (or 10/11: ``version``) with waits that time out instead of
    hanging. ``login=None`` connects without credentials (anonymous)."""

    def __init__(
        self,
        port: int,
        *,
        login: str | None = "guest",
        passcode: str | None = "guest",
        vhost: str | None = None,
        heartbeats: tuple[int, int] = (0, 0),
        version: str = "1.2",
    ) -> None:
        options: dict[str, Any] = {"auto_content_length": True, "reconnect_attempts_max": 1}
        if version != "1.0":
            options.update(heartbeats=heartbeats, vhost=vhost)
        self.conn = _CONNECTIONS[version]([("127.0.0.1", port)], **options)
        self.version = version
        self.listener = RecordingListener()
        self.conn.set_listener("recording", self.listener)
        self.login = login
        self.passcode = passcode

    def connect(self, **headers: str) -> None:
        if self.login is None:
            self.conn.connect(wait=True, headers=headers)
        else:
            self.conn.connect(self.login, self.passcode, wait=True, headers=headers)

    def disconnect(self) -> None:
        if self.listener.got_error.is_set():
            # The server closes the socket after an ERROR; sending DISCONNECT into that race
            # fails with EBADF. Let the close arrive first.
            self.listener.disconnected.wait(5)
        if self.conn.is_connected():
            self.conn.disconnect()

    def subscribe(
        self,
        destination: str,
        sub_id: str,
        ack: str = "auto",
        *,
        receipt: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        headers = dict(headers or {})
        rid = self._receipt_id() if receipt else None
        if rid:
            headers["receipt"] = rid
        self.conn.subscribe(destination, sub_id, ack=ack, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def unsubscribe(self, sub_id: str) -> None:
        rid = self._receipt_id()
        self.conn.unsubscribe(sub_id, headers={"receipt": rid})
        self.wait_receipt(rid)

    def send(
        self,
        destination: str,
        body: str,
        *,
        receipt: bool = True,
        headers: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """SEND; with a receipt (the default), wait for it: the RECEIPT's headers."""
        headers = dict(headers or {})
        rid = self._receipt_id() if receipt else None
        if rid:
            headers["receipt"] = rid
        self.conn.send(destination, body, headers=headers)
        if not rid:
            return {}
        self.wait_receipt(rid)
        return self.listener.receipt_headers[rid]

    def ack(self, ack_id: str, transaction: str | None = None) -> None:
        self.conn.ack(ack_id, transaction=transaction)

    def nack(self, ack_id: str, **headers: str) -> None:
        self.conn.nack(ack_id, **headers)

    def _receipt_id(self) -> str:
        return f"r-{uuid.uuid4().hex[:10]}"

    def wait_receipt(self, receipt_id: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.listener.receipt_cond:
            while receipt_id not in self.listener.receipts:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no RECEIPT {receipt_id}; errors: {self.errors()}")
                self.listener.receipt_cond.wait(left)

    def next_message(self, timeout: float = 10.0) -> Received:
        try:
            return self.listener.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no MESSAGE within {timeout} s; errors: {self.errors()}") from None

    def next_event(self, event_type: str, timeout: float = 10.0) -> Received:
        """The next MESSAGE with ``event-type: <event_type>``, passing over the others: a
        room's presence (and typing) events come whenever they happen, between any two."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.next_message(max(0.01, deadline - time.monotonic()))
            if message.headers.get("event-type") == event_type:
                return message

    def messages(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        return [self.next_message(max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def no_message(self, wait: float = 0.5) -> bool:
        try:
            self.listener.messages.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def next_error(self, timeout: float = 10.0) -> Received:
        try:
            return self.listener.errors.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no ERROR within {timeout} s") from None

    def errors(self) -> list[Received]:
        found: list[Received] = []
        while True:
            try:
                found.append(self.listener.errors.get_nowait())
            except queue.Empty:
                return found


@contextmanager
def stomp_client(port: int, **kwargs: Any) -> Iterator[StompClient]:
    client = StompClient(port, **kwargs)
    client.connect()
    try:
        yield client
    finally:
        client.disconnect()
