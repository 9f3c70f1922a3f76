"""The connection adapter on its own: a real STOMP session, fakes for everything around it.

Like websockets' and uvicorn's adapter tests: bytes in through :meth:`Connection.feed`, bytes
out through a recording :class:`~gateway.ports.Outbound`, and fakes of the node (host), the
access policy, the router and the relay's subscriptions (the project's own interfaces, not
the broker's). What the broker and Redis do is covered end to end elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from gateway.access import AccessDenied, AuthError, Breach, Identity, UserLease
from gateway.app import connection_limits
from gateway.auth.authority import Authority, Authorize
from gateway.connection import Connection
from gateway.errors import ClientError
from gateway.metrics import Metrics
from gateway.ports import (
    ConfirmCallback,
    ConnectionLimits,
    DeliverySink,
    RateLimiter,
    SendMode,
    Subscription,
)
from gateway.settings import Settings
from gateway.stomp import PreparedMessage

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00"


def frame(command: str, *headers: str, body: str = "") -> bytes:
    return "\n".join((command, *headers, "", body)).encode() + b"\x00"


class FakeOutbound:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.queued = 0  # what buffered() reports
        self.closed = False
        self.aborted = False

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def frames(self) -> list[tuple[str, dict[str, str]]]:
        """(command, headers) of every frame written (headers unescaped as STOMP 1.2)."""
        parsed = []
        for raw in self.data.split(b"\x00"):
            if not raw.strip():
                continue
            head = raw.lstrip(b"\r\n").split(b"\n\n", 1)[0].decode()
            command, *lines = head.split("\n")
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers.setdefault(name, value.replace("\\c", ":").replace("\\\\", "\\"))
            parsed.append((command, headers))
        return parsed

    def commands(self) -> list[str]:
        return [command for command, _ in self.frames()]

    def header(self, name: str) -> str | None:
        """``name`` of the last frame written."""
        return self.frames()[-1][1].get(name)

    def body(self) -> str:
        """The body of the last frame written (an ERROR's explanation)."""
        raw = [chunk for chunk in self.data.split(b"\x00") if chunk.strip()][-1]
        return raw.lstrip(b"\r\n").split(b"\n\n", 1)[1].decode()

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def buffered(self) -> int:
        return self.queued

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class FakeHost:
    def __init__(self) -> None:
        self.dirty: list[Connection] = []
        self.active: list[Connection] = []
        self.authenticated_: list[Connection] = []
        self.forgotten: list[str] = []
        self.started: list[Connection] = []

    def new_session_id(self) -> str:
        return "node-1"

    def mark_dirty(self, conn: Connection) -> None:
        self.dirty.append(conn)

    def mark_active(self, conn: Connection) -> None:
        self.active.append(conn)

    def authenticated(self, conn: Connection) -> None:
        self.authenticated_.append(conn)

    def frame_started(self, conn: Connection) -> None:
        self.started.append(conn)

    def forget(self, conn: Connection, reason: str) -> None:
        self.forgotten.append(reason)


class CountingLimiter:
    def __init__(self, frames: int | None = None) -> None:
        self.frames = frames  # None: no limit
        self.charged: list[int] = []

    def breach(self, frame_bytes: int, now: float) -> Breach | None:
        return self.charge(1, frame_bytes, now)

    def charge(self, frames: int, size: int, now: float) -> Breach | None:
        """One entry per frame charged (the bytes with the first)."""
        if self.frames is not None and len(self.charged) + frames > self.frames:
            return Breach("frame_rate", "rate limit: too many frames")
        self.charged += [size] + [0] * (frames - 1) if frames else []
        return None


@dataclass
class FakeAccess:
    limiter: CountingLimiter = field(default_factory=CountingLimiter)
    denied: set[str] = field(default_factory=set)  # destinations
    leases: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def rate_limiter(self, transport: str, roles: frozenset[str] | None = None) -> RateLimiter:
        return self.limiter

    async def authenticate(
        self,
        login: str | None,
        passcode: str | None,
        headers: Iterable[tuple[str, str]],
        handshake_token: str | None,
        now: float,
    ) -> Identity:
        if (login, passcode) != ("guest", "guest"):
            raise AuthError("bad credentials", "login or passcode is wrong")
        return Identity(user="guest", dev=True)

    def deadline(self, identity: Identity) -> float | None:
        return None

    async def acquire_user(self, user: str) -> UserLease:
        self.leases.append(user)
        return UserLease(user, "", shared=False)

    async def release_user(self, lease: UserLease) -> None:
        self.released.append(lease.user)

    def authorize_send(
        self, identity: Identity, destination: str, headers: Iterable[tuple[str, str]]
    ) -> Awaitable[tuple[tuple[str, str], ...]]:
        return self._authorize(destination, tuple(headers))

    async def _authorize(
        self, destination: str, headers: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        if destination in self.denied:
            raise AccessDenied(f"SEND to {destination} denied")
        return (*headers, ("sender", "guest"))

    async def authorize_subscribe(self, identity: Identity, destination: str) -> None:
        if destination in self.denied:
            raise AccessDenied(f"SUBSCRIBE to {destination} denied")

    async def authorize(self, identity: Identity, authority: Authority) -> None:
        pass


class FakeSubscription:
    def __init__(self, owned: Sequence[str] = (), destination: str = "/topic/t") -> None:
        self.owned = set(owned)
        self.destination = destination
        self.calls: list[str] = []

    def owns(self, ack_id: str) -> bool:
        return ack_id in self.owned

    async def ack(self, ack_id: str) -> None:
        self.calls.append(f"ack {ack_id}")

    async def nack(self, ack_id: str, requeue: bool = True) -> None:
        self.calls.append(f"nack {ack_id} requeue={requeue}")

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        self.calls.append("cancel")


@dataclass
class Sent:
    destination: str
    body: bytes
    on_confirm: ConfirmCallback | None


class FakeRouter:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.refuse: ClientError | None = None  # raised by the next send/subscribe
        self.subscriptions: dict[str, FakeSubscription] = {}
        self.catch_up: Callable[[], None] | None = None  # returned with the next SUBSCRIBE
        self.released = False
        #: what a chat SEND comes back with: headers for its RECEIPT
        self.receipt_headers: tuple[tuple[str, str], ...] = ()
        self.unsubscribed_from: list[str] = []

    def mode(self, destination: str) -> SendMode:
        if destination.startswith("/app/"):
            return SendMode.CHAT
        if destination.startswith("/amq/queue/"):
            return SendMode.ALONE
        return SendMode.WINDOW

    def send(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        authorize: Authorize | None = None,
    ) -> Awaitable[Sequence[tuple[str, str]] | None]:
        if destination.startswith("/app/"):
            return self._chat(Sent(destination, body, None))
        return self._send(Sent(destination, body, None))

    async def _chat(self, sent: Sent) -> Sequence[tuple[str, str]]:
        await self._send(sent)
        return self.receipt_headers

    def publish(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        on_confirm: ConfirmCallback,
        authorize: Authorize | None = None,
    ) -> Awaitable[None]:
        return self._send(Sent(destination, body, on_confirm))

    async def _send(self, sent: Sent) -> None:
        refused, self.refuse = self.refuse, None
        if refused is not None:
            raise refused
        self.sent.append(sent)

    async def subscribe(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
        *,
        authorize: Authorize | None = None,
    ) -> tuple[Subscription, Callable[[], None] | None]:
        refused, self.refuse = self.refuse, None
        if refused is not None:
            raise refused
        sub = FakeSubscription(owned=("a-1", "a-2"), destination=destination)
        self.subscriptions[subscription_id] = sub
        catch_up, self.catch_up = self.catch_up, None
        return sub, catch_up

    async def unsubscribed(self, sink: DeliverySink, destination: str) -> None:
        self.unsubscribed_from.append(destination)

    async def release(self, sink: DeliverySink) -> None:
        self.released = True


@dataclass
class Rig:
    conn: Connection
    out: FakeOutbound
    host: FakeHost
    access: FakeAccess
    router: FakeRouter
    metrics: Metrics

    @property
    def unconfirmed(self) -> list[ConfirmCallback]:
        return [s.on_confirm for s in self.router.sent if s.on_confirm is not None]


def errors(rig: Rig, reason: str) -> float | None:
    return rig.metrics.registry.get_sample_value("stompgate_errors_total", {"reason": reason})


def make(limits: ConnectionLimits | None = None, access: FakeAccess | None = None) -> Rig:
    out, host, router, metrics = FakeOutbound(), FakeHost(), FakeRouter(), Metrics()
    access = access or FakeAccess()
    conn = Connection(
        out,
        host,
        access=access,
        router=router,
        metrics=metrics,
        limits=limits or connection_limits(Settings(heartbeat_send_ms=0, heartbeat_receive_ms=0)),
        transport_name="tcp",
        peer="127.0.0.1",
    )
    return Rig(conn, out, host, access, router, metrics)


async def connected(limits: ConnectionLimits | None = None) -> Rig:
    rig = make(limits)
    await rig.conn.feed(CONNECT)
    assert rig.out.commands() == ["CONNECTED"]
    rig.out.writes.clear()
    return rig


# -- CONNECT ---------------------------------------------------------------------------------


async def test_connect_accepted() -> None:
    rig = make()
    await rig.conn.feed(CONNECT)
    assert rig.out.commands() == ["CONNECTED"]
    assert rig.out.header("user-name") == "guest"
    assert rig.conn.user == "guest"
    assert rig.conn.version == "1.2"
    assert rig.host.authenticated_ == [rig.conn]
    assert rig.access.leases == ["guest"]
    assert rig.metrics.frames_out.counts == {"CONNECTED": 1}
    assert rig.metrics.frames_in.counts == {"CONNECT": 1}


async def test_connect_refused_gets_one_error_then_close() -> None:
    rig = make()
    await rig.conn.feed(CONNECT.replace(b"passcode:guest", b"passcode:wrong"))
    assert rig.out.commands() == ["ERROR"]
    assert rig.out.header("message") == "Bad CONNECT"
    assert rig.out.header("stompgate-reason") == "auth"
    assert rig.out.header("content-type") == "text/plain"
    assert rig.out.body() == "bad credentials\nlogin or passcode is wrong"
    assert rig.out.closed
    assert rig.host.authenticated_ == []
    assert rig.host.forgotten == ["auth"]
    assert rig.conn.closing
    await rig.conn.feed(CONNECT)  # nothing more is read
    assert rig.out.commands() == ["ERROR"]


async def test_reading_marks_the_connection_active_once_until_the_host_clears_it() -> None:
    rig = make()
    await rig.conn.feed(b"\n")
    await rig.conn.feed(CONNECT)
    assert rig.host.active == [rig.conn]
    rig.conn.active = False  # the host announced it
    await rig.conn.feed(b"\n")  # a heart-beat
    assert rig.host.active == [rig.conn, rig.conn]


# -- SEND ------------------------------------------------------------------------------------


async def test_a_send_with_receipt_goes_on_and_its_receipt_follows_the_confirm() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/queue/q", "receipt:r1", body="hi"))
    assert [(s.destination, s.body) for s in rig.router.sent] == [("/queue/q", b"hi")]
    assert len(rig.unconfirmed) == 1  # written, the confirm to follow
    assert rig.out.commands() == []
    rig.unconfirmed[0](None, 0.002)  # inside the relay's read
    assert rig.host.dirty == [rig.conn]  # the host writes it with that read's flush
    rig.conn.flush()
    assert rig.out.commands() == ["RECEIPT"]
    assert rig.out.header("receipt-id") == "r1"
    assert sum(rig.metrics.confirm_latency.counts) == 1


async def test_receipted_sends_in_one_read_are_all_written_and_receipted_in_order() -> None:
    rig = await connected()
    await rig.conn.feed(
        b"".join(
            frame("SEND", "destination:/topic/t", f"receipt:r{i}", body=str(i)) for i in range(5)
        )
    )
    assert [s.body for s in rig.router.sent] == [b"0", b"1", b"2", b"3", b"4"]
    assert rig.out.commands() == []  # nothing waited for a confirm
    confirms = rig.unconfirmed
    for i in (3, 1, 4, 0, 2):  # different publish channels: any order
        confirms[i](None, 0.001)
    rig.conn.flush()
    assert [headers["receipt-id"] for _, headers in rig.out.frames()] == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]


async def test_send_without_receipt_goes_on_at_once_and_a_receipt_waits_for_it() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/topic/t", body="1"))
    assert len(rig.unconfirmed) == 1  # written, the confirm to follow
    assert rig.out.commands() == []
    await rig.conn.feed(frame("SEND", "destination:/topic/t", "receipt:r2", body="2"))
    assert [s.body for s in rig.router.sent] == [b"1", b"2"]
    rig.unconfirmed[1](None, 0.002)
    rig.conn.flush()
    assert rig.out.commands() == []  # a RECEIPT vouches for every earlier SEND
    rig.unconfirmed[0](None, 0.002)
    rig.conn.flush()
    assert rig.out.commands() == ["RECEIPT"]
    assert sum(rig.metrics.confirm_latency.counts) == 2


async def test_a_subscribe_receipt_waits_for_the_pending_send_receipts() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/topic/t", "receipt:r1", body="1"))
    subscribed = asyncio.create_task(
        rig.conn.feed(frame("SUBSCRIBE", "id:s1", "destination:/topic/t", "receipt:r2"))
    )
    await asyncio.sleep(0.01)
    assert not subscribed.done()  # settles first: its RECEIPT does not overtake the SEND's
    rig.unconfirmed[0](None, 0.002)
    await subscribed
    assert [headers["receipt-id"] for _, headers in rig.out.frames()] == ["r1", "r2"]


async def test_an_error_waits_for_the_pending_send_receipts() -> None:
    rig = await connected()
    rig.access.denied.add("/topic/secret")
    refused = asyncio.create_task(
        rig.conn.feed(
            frame("SEND", "destination:/topic/t", "receipt:r1", body="1")
            + frame("SEND", "destination:/topic/secret", "receipt:r2", body="2")
        )
    )
    await asyncio.sleep(0.01)
    assert not refused.done()
    rig.unconfirmed[0](None, 0.002)
    await refused
    assert rig.out.commands() == ["RECEIPT", "ERROR"]
    assert [headers["receipt-id"] for _, headers in rig.out.frames()] == ["r1", "r2"]


async def test_a_full_window_makes_the_next_send_wait() -> None:
    settings = Settings(heartbeat_send_ms=0, heartbeat_receive_ms=0, max_unconfirmed=2)
    rig = await connected(connection_limits(settings))
    for body in "12":
        await rig.conn.feed(frame("SEND", "destination:/topic/t", body=body))
    third = asyncio.create_task(rig.conn.feed(frame("SEND", "destination:/topic/t", body="3")))
    await asyncio.sleep(0.01)
    assert not third.done()
    assert len(rig.router.sent) == 2
    rig.unconfirmed[0](None, 0.001)
    await third
    assert [s.body for s in rig.router.sent] == [b"1", b"2", b"3"]


async def test_a_refused_confirm_ends_the_session_with_one_error() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/queue/full", body="x"))
    refused = ClientError("SEND not confirmed: broker refused the message (nack)", reason="publish")
    rig.unconfirmed[0](refused, 0.003)
    assert rig.out.commands() == ["ERROR"]
    assert rig.out.header("message") == "SEND not confirmed: broker refused the message (nack)"
    assert rig.host.forgotten == ["publish"]
    assert rig.out.closed


async def test_a_refusal_among_receipted_sends_is_the_one_error() -> None:
    rig = await connected()
    await rig.conn.feed(
        frame("SEND", "destination:/queue/q", "receipt:r0", body="w")
        + frame("SEND", "destination:/queue/full", "receipt:r1", body="x")
        + frame("SEND", "destination:/queue/q", "receipt:r2", body="y")
    )
    rig.unconfirmed[0](None, 0.001)
    rig.unconfirmed[1](ClientError("SEND not confirmed: gone", reason="publish"), 0.001)
    rig.unconfirmed[2](None, 0.001)
    [receipt, error] = rig.out.frames()  # the close wrote both
    assert receipt == ("RECEIPT", {"receipt-id": "r0"})
    assert error[0] == "ERROR"
    assert error[1]["receipt-id"] == "r1"  # the refused SEND's
    assert rig.out.closed


async def test_chat_sends_are_awaited_outside_the_window() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/topic/t", body="1"))
    await rig.conn.feed(frame("SEND", "destination:/app/rooms/r1/messages", body="{}"))
    assert [s.on_confirm is None for s in rig.router.sent] == [False, True]
    assert sum(rig.metrics.confirm_latency.counts) == 0  # the chat layer's own confirm


async def test_a_chat_send_s_receipt_carries_what_the_chat_layer_returned() -> None:
    rig = await connected()
    rig.router.receipt_headers = (("stompgate-message-id", "42"), ("stompgate-duplicate", "true"))
    await rig.conn.feed(frame("SEND", "destination:/app/rooms/r1/messages", "receipt:p-1"))
    [(command, headers)] = rig.out.frames()
    assert command == "RECEIPT"
    assert headers == {
        "receipt-id": "p-1",
        "stompgate-message-id": "42",
        "stompgate-duplicate": "true",
    }
    rig.out.writes.clear()
    await rig.conn.feed(frame("SEND", "destination:/topic/t", "receipt:t-1", body="1"))
    rig.unconfirmed[0](None, 0.001)
    rig.conn.flush()
    assert rig.out.frames() == [("RECEIPT", {"receipt-id": "t-1"})]  # relay SENDs: nothing more


async def test_an_amq_queue_send_lets_earlier_ones_settle_first() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SEND", "destination:/topic/t", body="1"))
    alone = asyncio.create_task(rig.conn.feed(frame("SEND", "destination:/amq/queue/q", body="2")))
    await asyncio.sleep(0.01)
    assert not alone.done()
    rig.unconfirmed[0](None, 0.001)
    await alone
    assert [(s.body, s.on_confirm is None) for s in rig.router.sent] == [
        (b"1", False),
        (b"2", True),
    ]


async def test_a_denied_send_gets_an_error_with_its_receipt_id() -> None:
    rig = await connected()
    rig.access.denied.add("/topic/secret")
    await rig.conn.feed(frame("SEND", "destination:/topic/secret", "receipt:r9", body="x"))
    assert rig.out.commands() == ["ERROR"]
    assert rig.out.header("receipt-id") == "r9"
    assert errors(rig, "denied") == 1
    assert rig.host.forgotten == ["denied"]


async def test_frames_in_one_read_after_an_error_are_not_handled() -> None:
    rig = await connected()
    rig.router.refuse = ClientError("SEND not confirmed: no route", reason="publish")
    await rig.conn.feed(
        frame("SEND", "destination:/queue/q", "receipt:a", body="1")
        + frame("SEND", "destination:/queue/q", "receipt:b", body="2")
    )
    assert rig.out.commands() == ["ERROR"]
    assert rig.router.sent == []


# -- SUBSCRIBE, UNSUBSCRIBE, ACK ---------------------------------------------------------------


async def test_subscribe_receipts_then_runs_the_catch_up() -> None:
    rig = await connected()
    replay = PreparedMessage("/topic/room.r", (("stompgate-message-id", "7"),), b"old")
    rig.router.catch_up = lambda: rig.conn.deliver("s1", replay, None)
    await rig.conn.feed(frame("SUBSCRIBE", "id:s1", "destination:/topic/room.r", "receipt:r"))
    assert "s1" in rig.router.subscriptions
    assert rig.out.commands() == ["RECEIPT", "MESSAGE"]
    assert rig.out.data.endswith(b"old\x00")


async def test_a_refused_subscribe_gets_one_error() -> None:
    rig = await connected()
    rig.router.refuse = ClientError("SUBSCRIBE failed: no queue", reason="subscribe")
    await rig.conn.feed(frame("SUBSCRIBE", "id:s1", "destination:/amq/queue/none", "receipt:r"))
    assert rig.out.commands() == ["ERROR"]
    assert rig.out.header("receipt-id") == "r"
    assert rig.host.forgotten == ["subscribe"]


async def test_unsubscribe_ack_and_nack_reach_the_subscription() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SUBSCRIBE", "id:s1", "destination:/queue/q", "ack:client"))
    sub = rig.router.subscriptions["s1"]
    await rig.conn.feed(frame("ACK", "id:a-1"))  # found by the ack id
    await rig.conn.feed(frame("NACK", "id:a-2", "subscription:s1"))
    await rig.conn.feed(frame("ACK", "id:unknown"))  # harmless: nothing holds it
    await rig.conn.feed(frame("UNSUBSCRIBE", "id:s1", "receipt:u"))
    assert sub.calls == ["ack a-1", "nack a-2 requeue=True", "cancel"]
    assert rig.out.commands() == ["RECEIPT"]


async def test_the_router_hears_of_an_unsubscribe_after_the_cancel() -> None:
    rig = await connected()
    await rig.conn.feed(frame("SUBSCRIBE", "id:s1", "destination:/topic/room.r"))
    await rig.conn.feed(frame("UNSUBSCRIBE", "id:s1"))
    await rig.conn.feed(frame("UNSUBSCRIBE", "id:s1"))  # gone already: nothing to tell
    assert rig.router.subscriptions["s1"].calls == ["cancel"]
    assert rig.router.unsubscribed_from == ["/topic/room.r"]


async def test_release_gives_back_the_user_lease_and_the_relay_state() -> None:
    rig = await connected()
    rig.conn.close("peer_closed")
    await rig.conn.release()
    assert rig.access.released == ["guest"]
    assert rig.router.released
    assert rig.host.forgotten == ["peer_closed"]


# -- deliveries and output -------------------------------------------------------------------


async def test_deliveries_mark_dirty_once_and_flush_in_one_write() -> None:
    rig = await connected()
    message = PreparedMessage("/topic/t", (), b"m")
    rig.conn.deliver("s1", message, None)
    rig.conn.deliver("s1", message, None)
    assert rig.host.dirty == [rig.conn]
    assert rig.out.writes == []
    rig.conn.dirty = False  # the host flushes
    rig.conn.flush()
    assert len(rig.out.writes) == 1
    assert rig.out.commands() == ["MESSAGE", "MESSAGE"]
    assert [headers["message-id"] for _, headers in rig.out.frames()] == ["node-1-1", "node-1-2"]
    assert rig.metrics.delivered == 2


async def test_nothing_is_delivered_before_connected() -> None:
    rig = make()
    rig.conn.deliver("s1", PreparedMessage("/topic/t", (), b"m"), None)
    assert rig.host.dirty == []
    assert rig.metrics.delivered == 0


async def test_a_slow_consumer_is_told_and_closed() -> None:
    settings = Settings(heartbeat_send_ms=0, heartbeat_receive_ms=0, max_outbound_buffer=100)
    rig = await connected(connection_limits(settings))
    # A message larger than the limit goes out to a client whose backlog is within it.
    big = b"b" * 1000
    rig.conn.deliver("s1", PreparedMessage("/topic/t", (), big), None)
    rig.out.queued = 1100  # all of this write, and 100 bytes before it
    rig.conn.flush()
    assert rig.out.commands() == ["MESSAGE"]
    rig.out.queued = 1201  # 101 bytes of backlog besides the next write
    rig.conn.deliver("s1", PreparedMessage("/topic/t", (), b"m"), None)
    rig.conn.flush()
    assert rig.out.commands() == ["MESSAGE", "MESSAGE", "ERROR"]
    assert rig.out.header("message") == "Slow consumer"
    assert rig.out.body() == "slow consumer: 1201 bytes queued > max_outbound_buffer 100"
    assert rig.host.forgotten == ["slow_consumer"]
    assert rig.metrics.registry.get_sample_value("stompgate_slow_consumer_drops_total") == 1


async def test_a_rate_limit_breach_gets_one_error() -> None:
    access = FakeAccess(limiter=CountingLimiter(frames=2))
    rig = make(access=access)
    await rig.conn.feed(CONNECT + frame("SEND", "destination:/topic/t", body="1") * 3)
    assert rig.out.commands() == ["CONNECTED", "ERROR"]
    assert rig.out.header("message") == "Limit exceeded"  # a kind with no text of its own
    assert rig.out.body() == "rate limit: too many frames"
    assert rig.out.header("stompgate-reason") == "frame_rate"
    assert rig.host.forgotten == ["frame_rate"]
    assert len(rig.router.sent) == 1


async def test_disconnect_receipts_and_closes() -> None:
    rig = await connected()
    await rig.conn.feed(frame("DISCONNECT", "receipt:bye"))
    assert rig.out.commands() == ["RECEIPT"]
    assert rig.out.closed
    assert rig.host.forgotten == ["disconnect"]


async def test_a_protocol_violation_is_one_error_and_a_close() -> None:
    rig = await connected()
    await rig.conn.feed(b"BOGUS\n\n\x00")
    assert rig.out.commands() == ["ERROR"]
    assert rig.host.forgotten == ["protocol"]
    assert errors(rig, "protocol") == 1


@pytest.mark.parametrize("reason", ["shutdown", "broker_lost"])
async def test_fail_is_idempotent(reason: str) -> None:
    rig = await connected()
    rig.conn.fail("going away", reason=reason)
    rig.conn.fail("again", reason="other")
    assert rig.out.commands() == ["ERROR"]
    assert rig.host.forgotten == [reason]


async def test_a_rate_limit_breach_waits_for_the_pending_send_receipts() -> None:
    access = FakeAccess(limiter=CountingLimiter(frames=2))
    rig = make(access=access)
    breached = asyncio.create_task(
        rig.conn.feed(CONNECT + frame("SEND", "destination:/topic/t", "receipt:r1", body="1") * 2)
    )
    await asyncio.sleep(0.01)
    assert not breached.done()
    rig.unconfirmed[0](None, 0.001)
    await breached
    assert rig.out.commands() == ["CONNECTED", "RECEIPT", "ERROR"]
    assert rig.out.header("stompgate-reason") == "frame_rate"
