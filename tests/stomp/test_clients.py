"""Real client traffic (STOMP.js 7, stomp.py 9) through a ServerSession."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.stomp import HeartBeatPlan, ServerSession, SessionState, events

from .fixtures import stompjs7, stomppy9


def replay(
    frames: list[bytes], *, byte_at_a_time: bool = False
) -> tuple[ServerSession, list[events.Event]]:
    """Feed a client's frames, accepting the CONNECT; return all events."""
    session = ServerSession()
    seen: list[events.Event] = []
    for data in frames:
        chunks = [data[i : i + 1] for i in range(len(data))] if byte_at_a_time else [data]
        for chunk in chunks:
            session.receive_data(chunk)
            while batch := session.events_received():
                seen.extend(batch)
                if session.state is SessionState.CONNECTING:
                    session.accept(session_id="s-1", user_name="alice")
    return session, seen


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_stompjs7_session(byte_at_a_time: bool) -> None:
    session, seen = replay(stompjs7.SESSION, byte_at_a_time=byte_at_a_time)
    connect = seen[0]
    assert isinstance(connect, events.ConnectRequested)
    assert connect.version == "1.2"
    assert connect.login == "alice"
    assert connect.passcode == "jwt.token.here"
    assert connect.client_heartbeat == (10000, 10000)
    assert session.heartbeat == HeartBeatPlan(10000, 10000)
    assert seen[1:] == [
        events.SubscribeRequested(
            "sub-0",
            "/topic/room.general",
            "auto",
            (("id", "sub-0"), ("destination", "/topic/room.general")),
            None,
        ),
        events.SubscribeRequested(
            "sub-1",
            "/user/queue/inbox",
            "client-individual",
            (
                ("ack", "client-individual"),
                ("id", "sub-1"),
                ("destination", "/user/queue/inbox"),
            ),
            None,
        ),
        events.SendRequested(
            "/app/chat.send",
            (
                ("destination", "/app/chat.send"),
                ("content-type", "application/json"),
                ("receipt", "r-1"),
                ("x-note", "a:b"),
                ("content-length", "13"),
            ),
            b'{"text":"hi"}',
            "r-1",
            None,
        ),
        events.SendRequested("/app/typing", (("destination", "/app/typing"),), b"", None, None),
        events.SendRequested(
            "/app/file",
            (("destination", "/app/file"), ("content-length", "4")),
            b"\x00\x01\x00\x02",
            None,
            None,
        ),
        events.AckRequested("T_sub-1@@session-x@@1", "sub-1", None, None),
        events.NackRequested("T_sub-1@@session-x@@2", "sub-1", None, None),
        events.TransactionCommitted(
            "tx-2",
            (
                events.SendRequested(
                    "/app/chat.send",
                    (
                        ("destination", "/app/chat.send"),
                        ("transaction", "tx-2"),
                        ("content-length", "2"),
                    ),
                    b"ok",
                    None,
                    "tx-2",
                ),
            ),
            None,
        ),
        events.UnsubscribeRequested("sub-0", None),
        events.DisconnectRequested("close-3"),
    ]
    assert session.closed
    out = session.data_to_send()
    assert out.startswith(
        b"CONNECTED\nversion:1.2\nheart-beat:10000,10000\nserver:stompgate/0.1\n"
        b"session:s-1\nuser-name:alice\n\n\x00"
    )


def test_stompjs7_all_in_one_chunk() -> None:
    _, seen_whole = replay([b"".join(stompjs7.SESSION)])
    _, seen_split = replay(stompjs7.SESSION)
    assert seen_whole == seen_split


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_stomppy9_12_session(byte_at_a_time: bool) -> None:
    frames = [*stomppy9.V12[:2], stomppy9.HEARTBEAT, *stomppy9.V12[2:]]
    session, seen = replay(frames, byte_at_a_time=byte_at_a_time)
    connect = seen[0]
    assert isinstance(connect, events.ConnectRequested)
    assert (connect.version, connect.host, connect.login, connect.passcode) == (
        "1.2",
        "localhost",
        "guest",
        "guest",
    )
    assert connect.client_heartbeat == (4000, 4000)
    assert session.heartbeat == HeartBeatPlan(10000, 10000)
    assert [type(e) for e in seen[1:]] == [
        events.SubscribeRequested,
        events.SendRequested,
        events.AckRequested,
        events.NackRequested,
        events.TransactionCommitted,
        events.UnsubscribeRequested,
        events.DisconnectRequested,
    ]
    send_event = seen[2]
    assert isinstance(send_event, events.SendRequested)
    assert send_event.body == "h\u00e9llo:x\n".encode()
    assert dict(send_event.headers)["note"] == "a:b\\c"
    assert seen[3] == events.AckRequested("m-1", None, "r1", None)
    commit = seen[5]
    assert isinstance(commit, events.TransactionCommitted)
    assert [f.body for f in commit.frames if isinstance(f, events.SendRequested)] == [b"t"]
    assert seen[-1] == events.DisconnectRequested("bye")


def test_stomppy9_11_session() -> None:
    _, seen = replay(stomppy9.V11)
    connect = seen[0]
    assert isinstance(connect, events.ConnectRequested)
    assert connect.version == "1.1"
    assert seen[1:] == [events.AckRequested("m", "s", None, None)]


def test_stomppy9_10_session() -> None:
    session, seen = replay(stomppy9.V10)
    connect = seen[0]
    assert isinstance(connect, events.ConnectRequested)
    assert connect.version == "1.0"
    assert session.heartbeat == HeartBeatPlan(0, 0)
    subscribe = seen[1]
    assert isinstance(subscribe, events.SubscribeRequested)
    assert subscribe.subscription_id == "/topic/x"
    assert seen[2] == events.AckRequested("m", None, None, None)


class _CapturingTransport:
    """Just enough of stomp.py's transport for its protocol classes to build frames."""

    vhost = None
    current_host_and_port = ("localhost", 61613)

    def __init__(self, utils: Any) -> None:
        self.utils = utils
        self.sent: list[bytes] = []
        self.listeners: dict[str, Any] = {}

    def set_listener(self, name: str, listener: Any) -> None:
        self.listeners[name] = listener

    def is_connected(self) -> bool:
        return True

    def transmit(self, frame: Any) -> None:
        for _, listener in sorted(self.listeners.items()):
            listener.on_send(frame)
        self.sent.append(self.utils.pack(self.utils.convert_frame(frame)))


def test_stomppy_fixtures_match_installed_stomppy() -> None:
    protocol: Any = pytest.importorskip("stomp.protocol")
    utils: Any = pytest.importorskip("stomp.utils")

    transport = _CapturingTransport(utils)
    conn = protocol.Protocol12(transport, heartbeats=(4000, 4000))
    conn.set_receipt = lambda *args: None
    conn.connect("guest", "guest", with_connect_command=True)
    conn.subscribe("/queue/a", id="1", ack="client-individual")
    conn.send(
        "/queue/a",
        "h\u00e9llo:x\n",
        content_type="text/plain",
        headers={"reply-to": "/temp-queue/r", "note": "a:b\\c"},
    )
    conn.ack("m-1", receipt="r1")
    conn.nack("m-2")
    conn.begin("tx1")
    conn.send("/queue/a", "t", transaction="tx1")
    conn.commit("tx1")
    conn.unsubscribe("1")
    conn.disconnect(receipt="bye")
    assert transport.sent == stomppy9.V12

    transport = _CapturingTransport(utils)
    conn = protocol.Protocol11(transport, heartbeats=(0, 0))
    conn.connect("u", "p")
    conn.ack("m", "s")
    assert transport.sent == stomppy9.V11

    transport = _CapturingTransport(utils)
    conn = protocol.Protocol10(transport)
    conn.connect("u", "p")
    conn.subscribe("/topic/x")
    conn.ack("m")
    assert transport.sent == stomppy9.V10


REPO = Path(__file__).resolve().parents[2]
STOMPJS_BUNDLE = REPO / "tests/js/node_modules/@stomp/stompjs/bundles/stomp.umd.js"


def test_stompjs_fixtures_match_installed_stompjs() -> None:
    node = shutil.which("node")
    if node is None or not STOMPJS_BUNDLE.exists():
        pytest.skip("node or @stomp/stompjs (make install) not available")
    script = Path(__file__).parent / "fixtures" / "capture_stompjs.cjs"
    result = subprocess.run(
        [node, str(script), str(STOMPJS_BUNDLE)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    sent = [base64.b64decode(item) for item in json.loads(result.stdout)]
    assert sent == [frame for frame in stompjs7.SESSION if frame != stompjs7.HEARTBEAT]
