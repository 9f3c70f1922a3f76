"""The catch-up sink: hold live messages during the replay, then drop live duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import stomp_headers
from gateway.chat.catch_up import DEDUP_SECONDS, CatchUpSink
from gateway.chat.layer import ReplayItem
from gateway.stomp import PreparedMessage

TOPIC = "/topic/room.r1"


@dataclass
class RecordingSink:
    session_id: str = "node-7"
    user: str | None = "alice"
    got: list[tuple[str, str, str | None]] = field(default_factory=list)  # sub, id, ack id

    def deliver(self, subscription_id: str, message: PreparedMessage, ack_id: str | None) -> None:
        ids = [v for k, v in message.headers if k == stomp_headers.MESSAGE_ID]
        self.got.append((subscription_id, ids[0] if ids else "-", ack_id))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def live(message_id: int | None) -> PreparedMessage:
    headers = () if message_id is None else ((stomp_headers.MESSAGE_ID, str(message_id)),)
    return PreparedMessage(TOPIC, headers, b"{}")


def replayed(*ids: int) -> list[ReplayItem]:
    return [ReplayItem(i, TOPIC, ((stomp_headers.MESSAGE_ID, str(i)),), b"{}") for i in ids]


def test_it_is_the_client_to_the_relay() -> None:
    sink = CatchUpSink(RecordingSink(), after=0)
    assert (sink.session_id, sink.user) == ("node-7", "alice")


def test_live_messages_wait_for_the_replay_and_duplicates_are_dropped() -> None:
    inner, clock = RecordingSink(), Clock()
    sink = CatchUpSink(inner, after=10, clock=clock)
    for message_id in (12, 13, 9, None):  # 12 is replayed too; 9 the device has
        sink.deliver("s", live(message_id), None)
    assert inner.got == []
    sink.finish("s", replayed(11, 12))
    assert inner.got == [("s", "11", None), ("s", "12", None), ("s", "13", None), ("s", "-", None)]


def test_during_the_window_late_copies_are_dropped_once() -> None:
    inner, clock = RecordingSink(), Clock()
    sink = CatchUpSink(inner, after=10, clock=clock)
    sink.finish("s", replayed(11))
    clock.now += DEDUP_SECONDS - 1
    sink.deliver("s", live(11), None)  # a live copy of a replayed one
    sink.deliver("s", live(11), None)  # ... once only: a second copy is not a replay's
    sink.deliver("s", live(10), None)  # at the device's cursor
    sink.deliver("s", live(14), "ack-1")
    assert inner.got == [("s", "11", None), ("s", "11", None), ("s", "14", "ack-1")]


def test_after_the_window_everything_passes() -> None:
    inner, clock = RecordingSink(), Clock()
    sink = CatchUpSink(inner, after=10, clock=clock)
    sink.finish("s", replayed(11))
    clock.now += DEDUP_SECONDS + 1
    sink.deliver("s", live(11), None)
    sink.deliver("s", live(5), None)
    assert [message_id for _, message_id, _ in inner.got] == ["11", "11", "5"]


def test_ids_that_are_no_snowflake_are_not_taken_for_old_ones() -> None:
    inner = RecordingSink()
    sink = CatchUpSink(inner, after=10**18, clock=Clock())
    sink.finish("s", [])
    for odd in ("abc", "1" * 20, "-5"):
        sink.deliver("s", PreparedMessage(TOPIC, ((stomp_headers.MESSAGE_ID, odd),), b""), None)
    assert [message_id for _, message_id, _ in inner.got] == ["abc", "1" * 20, "-5"]
