"""Chat traffic for the chaos tests: posters that post with receipts through failures, readers
that record every message they get, the store read back, and the exact accounting of each.

A :class:`Poster` posts to one room, ``window`` SENDs in flight, each with a receipt and a
``client_id`` of its own (``<user>-<n>``). Every SEND it writes ends in exactly one of: a
RECEIPT (recorded as a :class:`Receipted`, with the message id the RECEIPT names), an ERROR
frame (counted in ``errors``), or a *silent* end, the connection closed with neither or nothing
at all within ``receipt_wait`` seconds (its client id goes to ``silent``; the tests that
require a SEND never to vanish assert that list empty). On anything but a RECEIPT it reconnects,
to the next of its ``ports``, and sends every post not yet receipted again, in order, with the
same ``client_id``: it gives up only when ``connect_wait`` or ``deadline`` runs out, and then
``failure`` says so. It posts ``count`` posts, or new ones until ``stop`` is set.

A :class:`Reader` subscribes to its rooms on one node and records every ``event-type: message``
it gets: each message id once (``duplicates`` counts the copies), live or replayed, and
``out_of_order`` when a new live message comes below the highest id of its room. With
``catch_up`` (the default) it subscribes again after every lost session with
``cur-max-message-id`` set to the highest id it has of each room, and follows
``stompgate-replay-more`` with the history API; without it, one session is all it has.

:class:`Posters` runs posters together in threads and waits for their progress (`one_by_one`
makes those of the tests where no SEND may vanish);
:func:`stored_per_post` reads the store back, one entry per (sender, client id).

Where the tests differ (how long a receipt, a connection or a history page may take, pauses
between posts or retries), the defaults are the strictest and each test passes its own.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import stomp.exception

from gateway import stomp_headers
from tests.e2e.procs import basic, http_get, post_body, store_rows
from tests.support.stomp_client import Received, RecordingListener, StompClient

LOST = (stomp.exception.StompException, OSError, TimeoutError)
"""What a broken or refused connection raises in stomp.py."""

Outcome = Literal["receipt", "error", "silent"]


class RefusedError(Exception):
    """A SUBSCRIBE answered with an ERROR, a close or nothing."""


@dataclass(frozen=True)
class Receipted:
    client_id: str
    message_id: int  # the RECEIPT's ``stompgate-message-id`` (for a retry: the first id)
    sent: float  # time.monotonic() of the SEND that was receipted
    at: float  # time.monotonic() of the RECEIPT


def wait_for(check: Callable[[], object], timeout: float, what: str) -> float:
    """Seconds until ``check()`` is true (polled); TimeoutError after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def settle(listener: RecordingListener, receipt: str, within: float) -> Outcome:
    """How a frame sent with ``receipt`` ended: its RECEIPT, an ERROR on the connection, or
    neither (the connection closed, or nothing came within ``within`` seconds)."""
    deadline = time.monotonic() + within
    with listener.receipt_cond:
        while receipt not in listener.receipts:
            if listener.got_error.is_set():
                return "error"
            if listener.disconnected.is_set() or time.monotonic() > deadline:
                return "silent"
            listener.receipt_cond.wait(0.05)
    return "receipt"


def _drop(client: StompClient) -> None:
    """Let go of a connection that failed (no wait for a close that may never come)."""
    with contextlib.suppress(*LOST):
        client.conn.disconnect()


def _close(client: StompClient) -> None:
    with contextlib.suppress(*LOST):
        client.disconnect()


@dataclass(eq=False)
class Poster:
    user: str
    room: str
    ports: list[int]  # the first one first; a reconnect moves on to the next
    passcode: str | None = None  # the user name (dev users) unless given (a JWT, say)
    count: int | None = None  # posts to make; None: new posts until `stop` is set
    window: int = 1  # SENDs in flight
    pause: float = 0.0  # seconds after each receipted post
    receipt_wait: float = 10.0  # no RECEIPT nor ERROR this long: the SEND vanished (silent)
    connect_wait: float = 10.0  # seconds one reconnect may keep failing before it gives up
    retry_pause: float = 0.2  # seconds before a reconnect
    deadline: float | None = 120.0  # seconds the whole run may take; None: no limit
    stop: threading.Event = field(default_factory=threading.Event)
    progress: threading.Condition = field(default_factory=threading.Condition)
    receipted: list[Receipted] = field(default_factory=list)  # each post once, when receipted
    posts: int = 0  # distinct posts begun (a resend is not another)
    sends: int = 0  # SEND frames written, resends included
    errors: int = 0  # SENDs written and answered with an ERROR
    silent: list[str] = field(default_factory=list)  # client ids of SENDs that vanished
    reconnects: int = 0  # sessions given up on (an ERROR, a close, a missing receipt)
    connect_failures: int = 0
    port: int = 0  # the node it is connected to now
    failure: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def wait_more_than(self, count: int, timeout: float) -> bool:
        """Wait until more than ``count`` posts are receipted."""
        with self.progress:
            return self.progress.wait_for(lambda: len(self.receipted) > count, timeout)

    def _run(self) -> None:
        give_up = None if self.deadline is None else time.monotonic() + self.deadline
        pending: deque[str] = deque()  # to send, in order: resends first
        in_flight: deque[tuple[str, float]] = deque()  # (client id, when its SEND was written)
        client, node = self._connect(0, give_up)
        writable = True
        while True:
            if give_up is not None and time.monotonic() > give_up:
                left = len(pending) + len(in_flight)
                raise TimeoutError(f"{self.user}: {left} not receipted in {self.deadline} s")
            while writable and len(in_flight) < self.window and self._next(pending):
                try:
                    self._send(client, pending[0])
                except LOST:
                    writable = False  # the socket is gone: what is in flight settles below
                    break
                in_flight.append((pending.popleft(), time.monotonic()))
            if not in_flight and writable:
                break  # all posted, all receipted
            if in_flight:
                cid, sent = in_flight[0]
                if settle(client.listener, f"r-{cid}", self.receipt_wait) == "receipt":
                    in_flight.popleft()
                    self._record(client, cid, sent)
                    if self.pause:
                        time.sleep(self.pause)
                    continue
            # Lost: whatever was not receipted is sent again, in order, on a new connection.
            self._account(client.listener, [cid for cid, _ in in_flight])
            pending.extendleft(reversed([cid for cid, _ in in_flight]))
            in_flight.clear()
            _drop(client)
            self.reconnects += 1
            time.sleep(self.retry_pause)
            client, node = self._connect(node + 1, give_up)
            writable = True
        _close(client)

    def _next(self, pending: deque[str]) -> bool:
        """Whether there is a post to send: a resend, or a new one if one is due."""
        if pending:
            return True
        if self.stop.is_set() or (self.count is not None and self.posts >= self.count):
            return False
        pending.append(f"{self.user}-{self.posts}")
        self.posts += 1
        return True

    def _send(self, client: StompClient, cid: str) -> None:
        client.conn.send(
            f"/app/rooms/{self.room}/messages",
            post_body(f"{self.user} says {cid}", cid),
            headers={"receipt": f"r-{cid}"},
        )
        self.sends += 1

    def _record(self, client: StompClient, cid: str, sent: float) -> None:
        headers = client.listener.receipt_headers[f"r-{cid}"]
        done = Receipted(cid, int(headers[stomp_headers.MESSAGE_ID]), sent, time.monotonic())
        with self.progress:
            self.receipted.append(done)
            self.progress.notify_all()

    def _account(self, listener: RecordingListener, cids: list[str]) -> None:
        """Count how the SENDs still in flight on a lost connection ended."""
        for cid in cids:
            if f"r-{cid}" in listener.receipts:
                continue  # receipted after all, behind one that was not: sent again anyway
            if listener.got_error.is_set():
                self.errors += 1
            else:
                self.silent.append(cid)

    def _connect(self, node: int, give_up: float | None) -> tuple[StompClient, int]:
        """A connection to the node ``node`` (modulo), or the next that takes one."""
        started = time.monotonic()
        while True:
            port = self.ports[node % len(self.ports)]
            client = StompClient(port, login=self.user, passcode=self.passcode or self.user)
            try:
                client.connect()
            except LOST:
                self.connect_failures += 1
                _drop(client)
                now = time.monotonic()
                if now - started > self.connect_wait or (give_up is not None and now > give_up):
                    raise
                node += 1
                time.sleep(self.retry_pause)
                continue
            self.port = port
            return client, node


def one_by_one(users: Sequence[str], room: str, port: int, *, pause: float) -> Posters:
    """Posters for the tests where no SEND may vanish: one SEND in flight each, new posts until
    stopped (no deadline: the test sets how long), a SEND with neither RECEIPT nor ERROR within
    30 s counted `silent`, reconnects tried for 60 s (a node may refuse sessions meanwhile)."""
    return Posters(
        [
            Poster(
                user,
                room,
                [port],
                pause=pause,
                receipt_wait=30,
                connect_wait=60,
                retry_pause=0.1,
                deadline=None,
            )
            for user in users
        ]
    )


class Posters:
    """Posters posting at once, each in a daemon thread, with one condition for progress."""

    def __init__(self, posters: list[Poster]) -> None:
        self.posters = posters
        self.progress = threading.Condition()
        for poster in posters:
            poster.progress = self.progress
        self.threads = [
            threading.Thread(target=p.run, name=p.user, daemon=True) for p in self.posters
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def receipts(self) -> list[Receipted]:
        with self.progress:
            return [r for p in self.posters for r in p.receipted]

    def receipted(self) -> set[tuple[str, str]]:
        """(sender, client id) of every receipted post."""
        with self.progress:
            return {(p.user, r.client_id) for p in self.posters for r in p.receipted}

    def wait_receipted(self, count: int, *, stall: float = 60.0, what: str = "posting") -> None:
        """Until ``count`` posts are receipted in all; AssertionError when none is for
        ``stall`` seconds."""
        with self.progress:
            while (got := self._count()) < count:
                self.progress.wait(stall)  # notified on every receipt
                assert self._count() > got, f"{what} stalled: {got} of {count} receipted"

    def stop(self) -> None:
        for poster in self.posters:
            poster.stop.set()

    def join(self, timeout: float) -> None:
        """Wait for every poster to end (each within ``timeout``); none failed."""
        for thread in self.threads:
            thread.join(timeout)
        failures = [(p.user, p.failure) for p in self.posters if p.failure is not None]
        assert not failures, failures
        assert [t.name for t in self.threads if t.is_alive()] == []

    def _count(self) -> int:
        return sum(len(p.receipted) for p in self.posters)


@dataclass(eq=False)
class Reader:
    user: str
    port: int
    rooms: list[str]
    passcode: str | None = None  # the user name (dev users) unless given
    http_url: str = ""  # the node's HTTP base: the history API completes a long replay
    catch_up: bool = True  # after a lost session, subscribe again from the last id
    subscribe_wait: float = 10.0  # no RECEIPT for a SUBSCRIBE this long: refused
    history_wait: float = 0.0  # seconds a history page answered 503 (store behind) is retried
    retry_pause: float = 0.2  # seconds between two sessions
    seen: dict[str, dict[int, str]] = field(default_factory=dict)  # room: id -> client id
    highest: dict[str, int] = field(default_factory=dict)  # room: the highest id seen
    copies: int = 0  # messages received in all, replays and duplicates included
    live: int = 0
    replayed: int = 0  # by a catch-up replay or the history API
    duplicates: int = 0  # an id received again
    out_of_order: int = 0  # a new live message below the highest id of its room
    other_events: int = 0  # MESSAGEs with another event-type (presence, typing, ...)
    sessions: int = 0
    refused: int = 0  # connections or catch-up SUBSCRIBEs refused (store behind, broker down)
    subscribed_after: list[dict[str, int]] = field(default_factory=list)  # cur-max-message-id
    told: list[str] = field(default_factory=list)  # the `message` of each ERROR it got
    failure: BaseException | None = None
    subscribed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for room in self.rooms:
            self.seen.setdefault(room, {})
            self.highest.setdefault(room, 0)

    def delivered(self) -> int:
        """Distinct messages received, all rooms."""
        return sum(len(ids) for ids in self.seen.values())

    def ids(self, room: str) -> set[int]:
        """The message ids of ``room`` received so far (safe while it runs)."""
        return set(self.seen[room].copy())

    def client_ids(self, room: str) -> dict[str, int]:
        """client id -> message id (the lowest) of each message of ``room`` received so far."""
        found: dict[str, int] = {}
        for message_id, cid in sorted(self.seen[room].copy().items()):
            found.setdefault(cid, message_id)
        return found

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self._session()
                if not self.catch_up:
                    return
                if not self.stop.is_set():
                    time.sleep(self.retry_pause)
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def _session(self) -> None:
        # The listener's queues are read directly: StompClient's waits drain the ERROR queue
        # into their timeout messages, and a refused SUBSCRIBE must not wait out a receipt.
        client = StompClient(self.port, login=self.user, passcode=self.passcode or self.user)
        listener = client.listener
        try:
            try:
                client.connect()
                rooms = self._subscribe(client)
            except (*LOST, RefusedError):
                if not self.catch_up:
                    raise
                self.refused += 1
                return
            self.sessions += 1
            self.subscribed.set()
            while not self.stop.is_set():
                if listener.got_error.is_set() or listener.disconnected.is_set():
                    return
                try:
                    message = listener.messages.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._take(rooms[message.headers["subscription"]], message)
            while not listener.messages.empty():  # what came before the stop counts
                message = listener.messages.get_nowait()
                self._take(rooms[message.headers["subscription"]], message)
        finally:
            self.told += [error.headers.get("message", "") for error in client.errors()]
            if listener.got_error.is_set():
                _drop(client)  # the node closes the connection after an ERROR
            else:
                _close(client)

    def _subscribe(self, client: StompClient) -> dict[str, str]:
        """SUBSCRIBE to every room (catching up from its highest id): subscription -> room."""
        rooms: dict[str, str] = {}
        after = {room: top for room, top in self.highest.items() if top}
        self.subscribed_after.append(after)
        for n, room in enumerate(self.rooms):
            receipt = f"s-{self.sessions}-{self.refused}-{n}"
            headers = {"receipt": receipt}
            if room in after:
                headers["cur-max-message-id"] = str(after[room])
            client.conn.subscribe(f"/topic/room.{room}", f"s{n}", headers=headers)
            outcome = settle(client.listener, receipt, self.subscribe_wait)
            if outcome != "receipt":
                raise RefusedError(f"SUBSCRIBE to {room}: {outcome}")
            rooms[f"s{n}"] = room
        return rooms

    def _take(self, room: str, message: Received) -> None:
        if message.headers.get("event-type") != "message":
            self.other_events += 1
            return
        event = json.loads(message.body)
        message_id = int(event["id"])
        replay = message.headers.get(stomp_headers.REPLAY) == "true"
        self._record(room, message_id, str(event.get("client_id")), replay=replay)
        if message.headers.get(stomp_headers.REPLAY_MORE) == "true":
            self._history_after(room, message_id)

    def _record(self, room: str, message_id: int, cid: str, *, replay: bool) -> None:
        self.copies += 1
        seen = self.seen[room]
        if message_id in seen:
            self.duplicates += 1
            return
        if not replay and message_id < self.highest[room]:
            self.out_of_order += 1
        seen[message_id] = cid
        self.highest[room] = max(self.highest[room], message_id)
        if replay:
            self.replayed += 1
        else:
            self.live += 1

    def _history_after(self, room: str, after: int) -> None:
        """Complete a replay from the history API."""
        deadline = time.monotonic() + self.history_wait
        cursor = after
        while True:
            status, _, body = http_get(
                f"{self.http_url}/api/rooms/{room}/messages?after={cursor}&limit=200",
                auth=basic(self.user, self.passcode or self.user),
            )
            if status == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            assert status == 200, (status, body)
            for event in body["messages"]:
                self._record(room, int(event["id"]), str(event.get("client_id")), replay=True)
            if body["next_after"] is None:
                return
            cursor = int(body["next_after"])


def stored_per_post(store: Path) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(sender, client id) -> [(id, room), ...] of every stored message."""
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for message_id, room, sender, cid in store_rows(store):
        found.setdefault((sender, cid), []).append((message_id, room))
    return found
