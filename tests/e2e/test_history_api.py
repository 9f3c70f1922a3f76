"""``GET /api/rooms/{room}/messages`` on a real gateway: keyset pagination both ways over the
Redis recent cache and the SQLite store the persist worker writes; 400s with reasons; 401."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import GatewayFactory
from tests.e2e.procs import (
    WorkerProcess,
    basic,
    history,
    history_after,
    http_get,
    post_body,
    room_name,
    store_rows,
    wait_stored,
)
from tests.support.stomp_client import stomp_client


def _ids(page: dict[str, object]) -> list[int]:
    messages = page["messages"]
    assert isinstance(messages, list)
    return [int(m["id"]) for m in messages]


def test_pagination_both_ways_across_cache_and_store(
    start_gateway: GatewayFactory, worker: WorkerProcess, store_path: Path
) -> None:
    env = {"STOMPGATE_CHAT_RECENT_LIMIT": "20", "STOMPGATE_FRAMES_PER_SECOND": "0"}
    gw_a = start_gateway("gw-a", **env)
    gw_b = start_gateway("gw-b", **env)
    room = room_name("hist")
    with stomp_client(gw_a.stomp_port, login="alice", passcode="alice") as alice:
        for n in range(75):
            alice.send(f"/app/rooms/{room}/messages", post_body(f"m{n}", f"c{n}"))
    wait_stored(store_path, 75, room=room)
    ids = [row[0] for row in store_rows(store_path, room)]
    assert len(ids) == 75

    # newest first, paging backwards with next_before (pages ascending inside)
    page = history(gw_b.http_url, room, limit=30)
    assert page["room"] == room
    assert _ids(page) == ids[-30:]
    assert page["next_before"] == str(ids[-30])
    assert page["next_after"] is None
    page = history(gw_b.http_url, room, before=page["next_before"], limit=30)
    assert _ids(page) == ids[15:45]  # crosses from the cache (newest 20) into the store
    page = history(gw_b.http_url, room, before=page["next_before"], limit=30)
    assert _ids(page) == ids[:15]
    assert page["next_before"] is None  # not full: the beginning

    # forward from any id with next_after
    page = history(gw_b.http_url, room, after=ids[9], limit=25)
    assert _ids(page) == ids[10:35]
    assert page["next_after"] == str(ids[34])
    assert history_after(gw_b.http_url, room, 0, limit=7) == ids
    assert history_after(gw_b.http_url, room, ids[60], limit=200) == ids[61:]
    assert history_after(gw_b.http_url, room, ids[-1]) == []

    # the message bodies are the chat.message.v1 events as published
    [event] = history(gw_a.http_url, room, after=ids[0], limit=1)["messages"]
    assert event["sender"] == "alice"
    assert event["client_id"] == "c1"
    assert event["text"] == "m1"
    assert event["id"] == str(ids[1])

    # an empty room
    empty = history(gw_b.http_url, room_name("empty"))
    assert empty["messages"] == []
    assert empty["next_before"] is None


def test_bad_requests_and_missing_credentials(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("gw-h")
    url = f"{gw.http_url}/api/rooms/general/messages"
    cases = {
        "?limit=0": "`limit` must be an integer from 1 to 200",
        "?limit=201": "`limit` must be an integer from 1 to 200",
        "?limit=ten": "`limit` must be an integer from 1 to 200",
        "?before=abc": "`before` must be a message id (decimal digits)",
        "?after=-1": "`after` must be a message id (decimal digits)",
        "?after=99999999999999999999": "`after` must be a message id (decimal digits)",
        "?before=5&after=1": "give `before` or `after`, not both",
    }
    for query, reason in cases.items():
        status, _, body = http_get(url + query)
        assert (status, body) == (400, {"error": reason}), query
    status, _, body = http_get(f"{gw.http_url}/api/rooms/{'x' * 65}/messages")
    assert status == 400
    assert "invalid room id" in body["error"]

    status, reason, _ = http_get(url, auth=None)
    assert status == 401
    status, reason, _ = http_get(url, auth=basic("alice", "wrong"))
    assert status == 401
    status, reason, _ = http_get(url, auth="Basic !!!notbase64")
    assert (status, reason) == (401, "malformed Basic credentials")
    status, _, body = http_get(url, auth=basic("bob", "bob"))
    assert status == 200
