"""`make up` (scripts/up.sh): the gateway plus the persist worker; history survives a restart
of everything (both processes, and the Redis recent cache wiped in between)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.e2e.procs import history_after, post_body, room_name, store_rows, wait_stored
from tests.support.gateway_proc import free_port
from tests.support.process import ROOT
from tests.support.stomp_client import stomp_client


def test_up_script_syntax() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "up.sh")], check=True)


@contextmanager
def up(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``bash scripts/up.sh`` until ready; SIGTERM (what Ctrl-C does) at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/up.sh"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cleaned up whatever happens
        )
    try:
        url = f"http://127.0.0.1:{env['STOMPGATE_HTTP_PORT']}/readyz"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-4000:]
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, 143), log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Nothing it started is left running (the gateway and the worker drained and exited).
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return
    time.sleep(2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    raise AssertionError("up.sh left processes behind")


def up_env(amqp_url: str, redis_url: str, redis_prefix: str, store: Path) -> dict[str, str]:
    """What a test's `make up` runs against: its vhost, Redis prefix, store, free ports."""
    return {
        "STOMPGATE_AMQP_URL": amqp_url,
        "STOMPGATE_REDIS_URL": redis_url,
        "STOMPGATE_REDIS_PREFIX": redis_prefix,
        "STOMPGATE_STORE": f"sqlite:///{store}",
        "STOMPGATE_HTTP_HOST": "127.0.0.1",
        "STOMPGATE_HTTP_PORT": str(free_port()),
        "STOMPGATE_STOMP_HOST": "127.0.0.1",
        "STOMPGATE_STOMP_PORT": str(free_port()),
        "STOMPGATE_WORKER_METRICS_PORT": str(free_port()),
        "TRANSLATE_WORKER_METRICS_PORT": str(free_port()),
        "APERTIUM_PORT": str(free_port()),
    }


def test_make_up_keeps_history_across_a_restart_of_everything(
    e2e_vhost_url: str,
    redis_url: str,
    redis_prefix: str,
    redis_keys: redis.Redis,
    tmp_path: Path,
) -> None:
    store = tmp_path / "var" / "messages.sqlite3"
    env = {
        **up_env(e2e_vhost_url, redis_url, redis_prefix, store),
        "STOMPGATE_DEV_USERS": "alice:alice,bob:bob",
        "STOMPGATE_NODE_ID": "up-test",
    }
    http_port = int(env["STOMPGATE_HTTP_PORT"])
    base = f"http://127.0.0.1:{http_port}"
    room = room_name("up")
    log = tmp_path / "up.log"
    with up(env, log):
        with urllib.request.urlopen(base + "/", timeout=10) as page:  # the demo chat, built
            assert b'src="/static/app/app.js"' in page.read()
        with stomp_client(int(env["STOMPGATE_STOMP_PORT"]), login="alice", passcode="alice") as a:
            for n in range(12):
                a.send(f"/app/rooms/{room}/messages", post_body(f"before {n}", f"b{n}"))
        wait_stored(store, 12, room=room)
        before = history_after(base, room, 0)
        assert len(before) == 12

    # Everything stopped; the Redis recent cache is gone too (as after a Redis restart).
    keys = list(redis_keys.scan_iter(match=f"{redis_prefix}*"))
    if keys:
        redis_keys.delete(*keys)

    with up(env, log):
        assert history_after(base, room, 0) == before  # from the store
        with stomp_client(int(env["STOMPGATE_STOMP_PORT"]), login="bob", passcode="bob") as b:
            b.subscribe(f"/topic/room.{room}", "s", headers={"cur-max-message-id": "0"})
            replayed = [int(json.loads(m.body)["id"]) for m in b.messages(12)]
            assert replayed == before
            b.send(f"/app/rooms/{room}/messages", post_body("after", "a1"))
            live = json.loads(b.next_message().body)
            assert live["sender"] == "bob"
        wait_stored(store, 13, room=room)
        after = history_after(base, room, 0)
        assert after == [*before, int(live["id"])]
    assert [row[0] for row in store_rows(store, room)] == after
    assert "stompgate is starting" in log.read_text()
    # rabbitmq/apply.py ran first each time; the second time everything was there already.
    assert "has every definition already" in log.read_text().split("stompgate is starting")[1]


def test_make_up_translates_posts_and_pushes_to_members_away_in_the_demo_room(
    e2e_vhost_url: str,
    redis_url: str,
    redis_prefix: str,
    redis_keys: redis.Redis,
    tmp_path: Path,
) -> None:
    store = tmp_path / "var" / "messages.sqlite3"
    env = {
        **up_env(e2e_vhost_url, redis_url, redis_prefix, store),
        "STOMPGATE_NODE_ID": "up-translate-test",
    }
    stomp_port = int(env["STOMPGATE_STOMP_PORT"])
    log = tmp_path / "up.log"
    with up(env, log), stomp_client(stomp_port, login="guest", passcode="guest") as guest:
        guest.subscribe("/topic/room.lobby", "s")
        sent = guest.send("/app/rooms/lobby/messages", post_body("Good morning, my friend"))
        message_id = sent["stompgate-message-id"]
        # guest is a member of lobby: its presence event may come before or after the post
        assert json.loads(guest.next_event("message").body)["id"] == message_id
        translation = guest.next_event("translation", timeout=60)  # the worker may be starting
        event = json.loads(translation.body)
        assert (event["message_id"], event["lang"], event["source_lang"]) == (
            message_id,
            "es",
            "en",
        )
        assert event["provider"] == "apertium"
        assert "amigo" in event["text"]
        assert "demo room: lobby (es, members guest, alice, bob) made" in log.read_text()
        assert "translate  apertium at http://127.0.0.1:" in log.read_text()
        # alice and bob, members of the lobby with no live session, get a push through the
        # notify worker's webhook, which make up points at its local sink (it prints them).
        deadline = time.monotonic() + 60
        pushed = "webhook-sink: push for alice in room lobby: "
        while pushed not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        line = next(x for x in log.read_text().splitlines() if pushed in x)
        assert "Good morning, my friend" in line, line
        assert "(1 unread)" in line, line
