"""The router: one place that sends a SEND to the chat layer or the relay, and binds a
SUBSCRIBE (with its catch-up). The relay and the chat bridge are small fakes here; the real
ones are covered end to end (tests/e2e/test_catch_up.py, tests/gateway/test_pipelined_send.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pytest

from gateway import stomp_headers
from gateway.chat.catch_up import CatchUpSink
from gateway.chat.errors import ChatError, StoreBehindError
from gateway.chat.layer import ReplayItem
from gateway.chat_bridge import ChatBridge, ReplayRequest
from gateway.errors import ClientError
from gateway.ports import DeliverySink, SendMode
from gateway.relay import Relay
from gateway.relay.planner import FanoutPlan
from gateway.router import Router
from gateway.stomp import PreparedMessage
from store import StoreUnavailableError

ROOM = "/topic/room.r1"


@dataclass
class Client:
    session_id: str = "n-1"
    user: str | None = "alice"
    got: list[str] = field(default_factory=list)

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        self.got.append(message.body.decode())


@dataclass
class FakeSubscription:
    cancelled: bool = False
    destination: str = ROOM

    def owns(self, ack_id: str) -> bool:
        return False

    async def ack(self, ack_id: str) -> None:
        pass

    async def nack(self, ack_id: str, requeue: bool = True) -> None:
        pass

    async def cancel(self, headers: Mapping[str, str] | None = None) -> None:
        self.cancelled = True


@dataclass
class FakeRelay:
    calls: list[str] = field(default_factory=list)
    sinks: list[DeliverySink] = field(default_factory=list)
    subscription: FakeSubscription = field(default_factory=FakeSubscription)

    async def publish(
        self,
        sink: DeliverySink,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        on_confirm: object = None,
        authorize: object = None,
    ) -> None:
        self.calls.append(f"publish {destination} confirm={'later' if on_confirm else 'now'}")

    def plan(
        self,
        sink: DeliverySink,
        subscription_id: str,
        destination: str,
        ack: str,
        headers: Mapping[str, str],
    ) -> FanoutPlan:
        return FanoutPlan(subscription_id, destination, "amq.topic", destination[len("/topic/") :])

    async def open(self, sink: DeliverySink, plan: FanoutPlan) -> FakeSubscription:
        self.calls.append(f"subscribe {plan.destination}")
        self.sinks.append(sink)
        return self.subscription

    async def detach(self, sink: DeliverySink) -> None:
        self.calls.append(f"detach {sink.session_id}")


@dataclass
class FakeChat:
    calls: list[str]
    behind: bool = False
    store_down: bool = False
    left: list[str] = field(default_factory=list)  # "<session> <room>" / "<session> gone"

    def handles(self, destination: str) -> bool:
        return destination.startswith("/app/")

    async def handle_send(
        self,
        user: str,
        destination: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        session: str = "",
    ) -> None:
        self.calls.append(f"chat {user} {destination}")

    def room_of(self, destination: str) -> str | None:
        prefix = "/topic/room."
        return destination[len(prefix) :] if destination.startswith(prefix) else None

    async def left_room(self, session: str, room: str) -> None:
        self.left.append(f"{session} {room}")

    async def session_gone(self, session: str) -> None:
        self.left.append(f"{session} gone")

    def replay_request(self, destination: str, headers: Mapping[str, str]) -> ReplayRequest | None:
        raw = headers.get("cur-max-message-id")
        if raw is None:
            return None
        if not raw.isdigit():
            raise ChatError("invalid cur-max-message-id header")
        return ReplayRequest(destination.rsplit(".", 1)[1], int(raw))

    def wants_snapshot(self, destination: str) -> bool:
        return destination == "/user/queue/unread"

    async def unread_snapshot(self, user: str) -> ReplayItem:
        self.calls.append(f"snapshot {user}")
        if self.store_down:
            raise StoreUnavailableError("SQLiteStore unavailable: disk I/O error")
        return ReplayItem(0, "/user/queue/unread", (), b"snapshot")

    async def replay(self, request: ReplayRequest) -> list[ReplayItem]:
        self.calls.append(f"replay {request.room} after {request.after_id}")
        if self.behind:
            raise StoreBehindError(request.room, [7])
        headers = ((stomp_headers.MESSAGE_ID, "7"),)
        return [ReplayItem(7, ROOM, headers, b"replayed")]


def make(*, chat: bool = True) -> tuple[Router, FakeRelay, FakeChat]:
    relay = FakeRelay()
    fake_chat = FakeChat(relay.calls)
    router = Router(cast(Relay, relay), cast(ChatBridge, fake_chat) if chat else None)
    return router, relay, fake_chat


def test_the_mode_of_each_destination() -> None:
    router, _, _ = make()
    assert router.mode("/app/rooms/r1/messages") is SendMode.CHAT
    assert router.mode("/amq/queue/jobs") is SendMode.ALONE
    assert router.mode("/topic/room.r1") is SendMode.WINDOW
    assert router.mode("/queue/jobs") is SendMode.WINDOW
    without_chat, _, _ = make(chat=False)
    assert without_chat.mode("/app/rooms/r1/messages") is SendMode.WINDOW


async def test_sends_go_to_the_chat_layer_or_the_relay_and_publishes_to_the_relay() -> None:
    router, relay, _ = make()
    client = Client()
    await router.send(client, "/app/rooms/r1/messages", (), b"{}")
    await router.publish(client, "/topic/t", (), b"x", on_confirm=lambda error, seconds: None)
    await router.send(client, "/queue/q", (), b"x")
    assert relay.calls == [
        "chat alice /app/rooms/r1/messages",
        "publish /topic/t confirm=later",
        "publish /queue/q confirm=now",
    ]


async def test_a_plain_subscribe_binds_the_client_itself() -> None:
    router, relay, _ = make()
    client = Client()
    sub, catch_up = await router.subscribe(client, "s", ROOM, "auto", {})
    assert catch_up is None
    assert sub is relay.subscription
    assert relay.sinks == [client]


async def test_a_catch_up_binds_a_holding_sink_then_reads_the_replay() -> None:
    router, relay, _ = make()
    client = Client()
    _, catch_up = await router.subscribe(client, "s", ROOM, "auto", {"cur-max-message-id": "5"})
    assert relay.calls == ["subscribe /topic/room.r1", "replay r1 after 5"]
    (sink,) = relay.sinks
    assert isinstance(sink, CatchUpSink)
    sink.deliver("s", PreparedMessage(ROOM, (), b"live"), None)  # held until the replay is out
    assert client.got == []
    assert catch_up is not None
    catch_up()
    assert client.got == ["replayed", "live"]


async def test_a_bad_catch_up_header_binds_nothing() -> None:
    router, relay, _ = make()
    with pytest.raises(ChatError):
        await router.subscribe(Client(), "s", ROOM, "auto", {"cur-max-message-id": "x"})
    assert relay.calls == []


async def test_a_catch_up_the_store_cannot_serve_is_unbound_again() -> None:
    router, relay, chat = make()
    chat.behind = True
    with pytest.raises(StoreBehindError):
        await router.subscribe(Client(), "s", ROOM, "auto", {"cur-max-message-id": "5"})
    assert relay.subscription.cancelled


async def test_a_snapshot_the_store_cannot_give_is_an_error_for_the_client_and_unbound() -> None:
    router, relay, chat = make()
    chat.store_down = True
    with pytest.raises(ClientError) as refused:
        await router.subscribe(Client(), "u", "/user/queue/unread", "auto", {})
    assert refused.value.message == "SUBSCRIBE failed"
    assert refused.value.reason == "store_unavailable"
    assert "disk I/O error" in refused.value.detail
    assert relay.subscription.cancelled


async def test_release_detaches_the_client() -> None:
    router, relay, _ = make()
    await router.release(Client())
    assert relay.calls == ["detach n-1"]


async def test_leaving_a_room_and_going_away_are_told_to_the_chat_layer() -> None:
    router, relay, chat = make()
    client = Client()
    await router.unsubscribed(client, ROOM)
    await router.unsubscribed(client, "/topic/other")  # not a room: nothing to tell
    await router.release(client)
    assert chat.left == ["n-1 r1", "n-1 gone"]
    assert relay.calls == ["detach n-1"]


async def test_the_unread_queue_first_gets_the_snapshot_then_live_updates() -> None:
    router, relay, _ = make()
    client = Client()
    _, first = await router.subscribe(client, "u", "/user/queue/unread", "auto", {})
    assert relay.calls == ["subscribe /user/queue/unread", "snapshot alice"]
    (sink,) = relay.sinks
    sink.deliver("u", PreparedMessage("/user/queue/unread", (), b"live"), None)
    assert client.got == []  # held until the snapshot is out
    assert first is not None
    first()
    assert client.got == ["snapshot", "live"]
