"""Translation end to end: a JWT-mode gateway process, the persist worker and the translation
worker (``python -m workers translate``) on one fresh vhost, one Redis prefix and one SQLite
store, with Apertium (a private apertium-apy) or a LibreTranslate fake that goes down.

Users' languages come both ways the gateway knows them: the token's ``locale`` claim,
recorded when the user connects (or calls the HTTP API), and the profile API.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from tests.e2e.procs import WorkerProcess, wait_stored
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import Frame, StompPeer, hs_token, jwt_env, next_message, subscribe
from tests.translate.fakes import GOOD_KEY, Reply, libretranslate

TRANSLATE = {"worker": "translate", "queue": "stompgate.translate"}
ENGLISH = "Good morning, my friend"


@pytest.fixture
def gateway(
    e2e_vhost_url: str,
    chat_env: dict[str, str],
    redis_prefix: str,
    log_dir: Path,
    redis_keys: redis.Redis,
) -> Iterator[GatewayProcess]:
    env = {**chat_env, **jwt_env(redis_prefix)}
    node = GatewayProcess(amqp_url=e2e_vhost_url, node_id="translate-e2e", env=env, auth="jwt")
    node.start(log_dir)
    yield node
    node.stop()


def start_translator(
    amqp_url: str, store_url: str, redis_url: str, redis_prefix: str, log_dir: Path, **env: str
) -> WorkerProcess:
    proc = WorkerProcess(
        amqp_url=amqp_url,
        store_url=store_url,
        name="translate",
        worker="translate",
        env={"STOMPGATE_REDIS_URL": redis_url, "STOMPGATE_REDIS_PREFIX": redis_prefix, **env},
    )
    proc.start(log_dir, timeout=60)  # lingua loads its models first
    return proc


@pytest.fixture
def translator(
    gateway: GatewayProcess,
    worker: WorkerProcess,
    e2e_vhost_url: str,
    store_url: str,
    redis_url: str,
    redis_prefix: str,
    log_dir: Path,
    apertium_url: str,
) -> Iterator[WorkerProcess]:
    """The translation worker with Apertium, beside the gateway and the persist worker."""
    proc = start_translator(
        e2e_vhost_url,
        store_url,
        redis_url,
        redis_prefix,
        log_dir,
        STOMPGATE_TRANSLATE_APERTIUM_URL=apertium_url,
    )
    yield proc
    proc.stop()


class User:
    """One user of the gateway: a token (with a ``locale`` claim, or none), the HTTP API,
    STOMP sessions."""

    def __init__(self, node: GatewayProcess, name: str, locale: str | None = None) -> None:
        self.node = node
        self.name = name
        self.token = hs_token(name, locale=locale)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.node.http_url + path, json=body, headers=headers) as r,
        ):
            text = await r.text()
            return r.status, json.loads(text) if text else None

    async def connect(self, stack: AsyncExitStack) -> StompPeer:
        peer = await stack.enter_async_context(StompPeer.tcp(self.node.stomp_port))
        frame = await peer.connect(self.token)
        assert frame.command == "CONNECTED", frame
        return peer


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as opened:
        yield opened


async def post(peer: StompPeer, room: str, text: str, receipt: str) -> str:
    """A chat post; the id its RECEIPT carries."""
    await peer.send_frame(
        "SEND",
        {"destination": f"/app/rooms/{room}/messages", "receipt": receipt},
        json.dumps({"client_id": receipt, "text": text}),
    )
    frames = await peer.receipt(receipt)
    return frames[-1].headers["stompgate-message-id"]


async def event(peer: StompPeer, event_type: str, within: float = 10.0) -> Frame:
    """The next MESSAGE of ``event_type`` (others skipped)."""
    async with asyncio.timeout(within):
        while True:
            found = await next_message(peer, within=within)
            if found.headers.get("event-type") == event_type:
                return found


async def quiet(peer: StompPeer, event_type: str, wait: float = 0.5) -> bool:
    """No MESSAGE of ``event_type`` arrives within ``wait`` seconds."""
    try:
        await event(peer, event_type, within=wait)
    except TimeoutError:
        return True
    return False


async def until(probe: Callable[[], bool], what: str, within: float = 60.0) -> None:
    """Until ``probe()`` (run in a thread: it may block) is true."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(probe):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def token_lang(store: Path, user: str) -> str | None:
    """The language claim the store has recorded for ``user`` (read directly)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT token_lang FROM profiles WHERE user = ?", (user,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


async def test_a_spanish_reader_gets_one_translation_live_in_history_and_on_catch_up(
    gateway: GatewayProcess, translator: WorkerProcess, stack: AsyncExitStack, store_path: Path
) -> None:
    alice = User(gateway, "alice")
    bob = User(gateway, "bob", locale="es")  # his token says Spanish
    carol = User(gateway, "carol")  # she says so in her profile
    dave = User(gateway, "dave", locale="en_GB")
    status, room = await alice.call(
        "POST", "/api/rooms", {"name": "Team", "members": ["bob", "carol", "dave"]}
    )
    assert status == 201, room
    rid, topic = room["id"], f"/topic/room.{room['id']}"
    status, profile = await carol.call("PUT", "/api/me/profile", {"lang": "es"})
    assert (status, profile["preferred_lang"]) == (200, "es")
    status, profile = await dave.call("GET", "/api/me/profile")  # records his claim
    assert profile == {"v": 1, "user": "dave", "token_lang": "en-GB", "preferred_lang": "en-GB"}

    bob_peer = await bob.connect(stack)  # the CONNECT records his token's language
    await until(lambda: token_lang(store_path, "bob") == "es", "bob's claim recorded")
    await subscribe(bob_peer, topic)
    status, profile = await bob.call("GET", "/api/me/profile")
    assert (profile["token_lang"], profile["preferred_lang"]) == ("es", "es")
    alice_peer = await alice.connect(stack)
    message_id = await post(alice_peer, rid, ENGLISH, "hello-1")

    message = await event(bob_peer, "message")
    assert json.loads(message.body)["id"] == message_id  # chat first, as always
    translated = await event(bob_peer, "translation", within=60)
    body = json.loads(translated.body)
    assert (body["room"], body["message_id"], body["lang"]) == (rid, message_id, "es")
    assert (body["provider"], body["source_lang"]) == ("apertium", "en")
    assert "amigo" in body["text"]
    assert translated.headers["content-type"] == "application/json"
    assert translated.headers["persistent"] == "true"
    assert "stompgate-message-id" not in translated.headers

    # Once per language: bob and carol both read Spanish; dave reads the source's.
    await until(
        lambda: translator.metric("stompgate_worker_messages_handled_total", **TRANSLATE) >= 1,
        "handled",
    )
    assert await quiet(bob_peer, "translation")
    status, page = await alice.call("GET", f"/api/rooms/{rid}/messages")
    assert status == 200
    assert [m["id"] for m in page["messages"]] == [message_id]
    assert page["translations"] == [body]

    carol_peer = await carol.connect(stack)
    await carol_peer.send_frame(
        "SUBSCRIBE",
        {"id": "c", "destination": topic, "cur-max-message-id": "0", "receipt": "sub-c"},
    )
    await carol_peer.receipt("sub-c")
    replayed = [await next_message(carol_peer), await next_message(carol_peer)]
    assert [f.headers["event-type"] for f in replayed] == ["message", "translation"]
    assert all(f.headers["stompgate-replay"] == "true" for f in replayed)
    assert json.loads(replayed[1].body) == body


async def test_no_translation_when_the_room_reads_the_source_language(
    gateway: GatewayProcess, translator: WorkerProcess, stack: AsyncExitStack
) -> None:
    alice, erin = User(gateway, "alice", locale="en"), User(gateway, "erin", locale="en-US")
    status, room = await alice.call(
        "POST", "/api/rooms", {"name": "Same", "members": ["erin"], "lang": "en"}
    )
    assert status == 201
    rid = room["id"]
    erin_peer, alice_peer = await erin.connect(stack), await alice.connect(stack)
    await subscribe(erin_peer, f"/topic/room.{rid}")
    message_id = await post(alice_peer, rid, ENGLISH, "same-1")
    assert json.loads((await event(erin_peer, "message")).body)["id"] == message_id
    skipped = {"reason": "same_language"}
    await until(
        lambda: translator.metric("stompgate_translate_skipped_total", **skipped) >= 1,
        "skipped",
    )
    assert await quiet(erin_peer, "translation")
    status, page = await alice.call("GET", f"/api/rooms/{rid}/messages")
    assert page["translations"] == []


async def test_a_provider_outage_delays_translations_and_never_a_chat_message(
    gateway: GatewayProcess,
    worker: WorkerProcess,
    e2e_vhost_url: str,
    store_url: str,
    store_path: Path,
    redis_url: str,
    redis_prefix: str,
    log_dir: Path,
    stack: AsyncExitStack,
) -> None:
    fake = libretranslate()
    await fake.start()
    stack.push_async_callback(fake.close)
    fake.down = Reply(503, {"error": "Service Unavailable"})
    translator = await asyncio.to_thread(
        start_translator,
        e2e_vhost_url,
        store_url,
        redis_url,
        redis_prefix,
        log_dir,
        STOMPGATE_TRANSLATE_PROVIDER="libretranslate",
        STOMPGATE_TRANSLATE_LIBRETRANSLATE_URL=fake.url,
        STOMPGATE_TRANSLATE_LIBRETRANSLATE_KEY=GOOD_KEY,
        STOMPGATE_TRANSLATE_MAX_ATTEMPTS="1",
    )
    try:
        alice, bob = User(gateway, "alice"), User(gateway, "bob", locale="es")
        status, room = await alice.call("POST", "/api/rooms", {"name": "Out", "members": ["bob"]})
        assert status == 201
        rid = room["id"]
        bob_peer, alice_peer = await bob.connect(stack), await alice.connect(stack)
        await subscribe(bob_peer, f"/topic/room.{rid}")
        texts = [f"{ENGLISH}, number {n}" for n in range(3)]
        ids = [await post(alice_peer, rid, text, f"out-{n}") for n, text in enumerate(texts)]
        # every chat message arrives while the provider is down: nothing waits for it
        live = [json.loads((await event(bob_peer, "message")).body)["id"] for _ in ids]
        assert live == ids
        retried = "stompgate_worker_messages_retried_total"
        await until(lambda: translator.metric(retried, **TRANSLATE) >= 3, "three retries")
        assert len(fake.translate_requests) >= 3
        await asyncio.to_thread(wait_stored, store_path, 3)
        status, page = await alice.call("GET", f"/api/rooms/{rid}/messages")
        assert ([m["id"] for m in page["messages"]], page["translations"]) == (ids, [])
        assert await quiet(bob_peer, "translation")

        fake.down = None  # the provider is back: the translations catch up
        translated = [json.loads((await event(bob_peer, "translation", 90)).body) for _ in ids]
        assert sorted(t["message_id"] for t in translated) == sorted(ids)
        assert {t["text"] for t in translated} == {f"[es] {text}" for text in texts}
        assert await quiet(bob_peer, "translation", 1.0)  # once each
        status, page = await alice.call("GET", f"/api/rooms/{rid}/messages")
        assert sorted(t["message_id"] for t in page["translations"]) == sorted(ids)
    finally:
        await asyncio.to_thread(translator.stop)
