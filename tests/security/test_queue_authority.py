"""Every queue name and queue argument a client can set is authority (issue 13, point 1).

Two JWT-mode nodes share a vhost and a Redis prefix; the rules file lets members use their
rooms (alice: r1, bob: r2), lets everyone name queues in destinations (``/queue/``,
``/amq/queue/``, ``/reply-queue/``), so that what refuses the hostile frames below is the
queue authority and nothing else, and gives a ``reporter`` role the queue names
``reports.*``. On node A a canary session receives a numbered stream the whole time and must
lose nothing. Every refusal is asserted by its exact ERROR, and by what did not happen: no
queue made or bound, nothing delivered where the caller may not read or write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiormq
import pytest
import redis

from gateway.auth.queue_policy import durable_queue_name, user_namespace
from tests.relay.helpers import binding_keys, queue_depth
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.process import ROOT
from tests.support.security import (
    Frame,
    StompPeer,
    hs_token,
    jwt_env,
    jwt_gateways,
    next_message,
    redis_keys,
    unique,
)

RULES = """
version = 1

[[rule]]
pattern = "/topic/room.{room}"
actions = ["subscribe"]
rooms = "{room}"

[[rule]]
pattern = "/user/queue/**"
actions = ["subscribe"]

[[rule]]
pattern = "/app/durable-subscriptions/**"
actions = ["send"]

# Destinations anyone may name: what keeps a client off other people's queues must be the
# queue authority, not these.
[[rule]]
pattern = "/amq/queue/**"
actions = ["subscribe"]

[[rule]]
pattern = "/queue/**"
actions = ["subscribe"]

[[rule]]
pattern = "/reply-queue/**"
actions = ["subscribe", "send"]

[[rule]]
pattern = "/topic/**"
actions = ["send"]
roles = ["service"]

[[rule]]
pattern = "/queue/**"
actions = ["send"]
roles = ["service"]

[[rule]]
pattern = "/amq/queue/**"
actions = ["send"]
roles = ["service"]

[[rule]]
pattern = "/queue/reports.**"
actions = ["queue"]
roles = ["reporter"]
"""

MAX_DURABLE = 3
DURABLE = {"durable": "true", "auto-delete": "false"}
QUIET = 0.7  # seconds a peer waits to be sure nothing more comes


@dataclass
class Env:
    a: GatewayProcess
    b: GatewayProcess
    vhost: str
    redis: redis.Redis
    redis_url: str
    prefix: str


@pytest.fixture(scope="module")
def env(amqp_url: str, rabbit_vhost: str, redis_url: str, log_dir: Path) -> Iterator[Env]:
    rules = log_dir / "queue-authority.toml"
    rules.write_text(RULES)
    with redis_keys(redis_url) as (client, prefix):
        settings = jwt_env(
            prefix,
            STOMPGATE_ACL_FILE=str(rules),
            STOMPGATE_MAX_DURABLE_SUBSCRIPTIONS=str(MAX_DURABLE),
        )
        nodes = [("qa-a", settings), ("qa-b", settings)]
        with jwt_gateways(amqp_url, log_dir, nodes) as (a, b):
            yield Env(a, b, rabbit_vhost, client, redis_url, prefix)


# -- sessions -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def session(
    port: int, user: str, *, rooms: Sequence[str] = (), roles: Sequence[str] = ("member",)
) -> AsyncIterator[StompPeer]:
    async with StompPeer.tcp(port) as peer:
        connected = await peer.connect(hs_token(user, rooms=list(rooms), roles=list(roles)))
        assert connected.command == "CONNECTED", connected
        yield peer


async def subscribed(peer: StompPeer, destination: str, sub_id: str, **headers: str) -> None:
    await peer.send_frame(
        "SUBSCRIBE", {"id": sub_id, "destination": destination, "receipt": sub_id, **headers}
    )
    await peer.receipt(sub_id)


async def refused(peer: StompPeer, command: str, headers: dict[str, str], body: str = "") -> Frame:
    """``command`` must be answered by an ERROR (for its receipt) and a close."""
    await peer.send_frame(command, {**headers, "receipt": "the-frame"}, body)
    error = await peer.expect_error()
    assert error.headers.get("receipt-id") == "the-frame"
    return error


def refused_for(error: Frame, user: str) -> str:
    """``error`` is ``access_refused`` for ``user`` (the body's first line, RabbitMQ's
    words); returns the rest of the body: why."""
    assert error.message == "access_refused"
    first, _, why = error.body.partition("\n")
    assert first == f"Access refused for user '{user}'"
    return why


async def send(peer: StompPeer, destination: str, body: str, **headers: str) -> list[Frame]:
    """SEND with a receipt; the frames that came up to the RECEIPT."""
    receipt = unique("send")
    await peer.send_frame("SEND", {"destination": destination, "receipt": receipt, **headers}, body)
    return await peer.receipt(receipt)


async def nothing_more(peer: StompPeer) -> None:
    try:
        found = await peer.frame(QUIET)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {found}")


def queue_names(vhost: str) -> set[str]:
    return {q["name"] for q in rabbit.list_queues(vhost)}


class Canary:
    """A session on node A that receives a numbered stream from a service while a test runs;
    on exit every number must have arrived, once and in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.room = unique("canary")
        self._stop = asyncio.Event()
        self._sent = 0

    async def __aenter__(self) -> Canary:
        self._stack = contextlib.AsyncExitStack()
        self.peer = await self._stack.enter_async_context(
            session(self.port, unique("canary"), rooms=[self.room])
        )
        await subscribed(self.peer, f"/topic/room.{self.room}", "canary")
        publisher = await self._stack.enter_async_context(
            session(self.port, unique("feeder"), roles=["service"])
        )
        self._task = asyncio.create_task(self._feed(publisher))
        return self

    async def _feed(self, publisher: StompPeer) -> None:
        while not self._stop.is_set():
            await send(publisher, f"/topic/room.{self.room}", str(self._sent))
            self._sent += 1
            await asyncio.sleep(0.02)

    async def __aexit__(self, failed: object, *exc: object) -> None:
        self._stop.set()
        await self._task
        if failed is not None:  # the test's own error is what counts
            await self._stack.aclose()
            return
        got = [(await next_message(self.peer)).body for _ in range(self._sent)]
        await nothing_more(self.peer)
        await self._stack.aclose()
        assert self._sent > 0
        assert got == [str(n) for n in range(self._sent)]


# -- x-queue-name: someone else's queue ---------------------------------------------------------


async def test_x_queue_name_cannot_attach_to_another_users_durable_subscription(env: Env) -> None:
    r1, r2 = unique("r1"), unique("r2")
    alice, bob = unique("alice"), unique("bob")
    bobs = durable_queue_name(bob, "news", f"/topic/room.{r2}")
    async with Canary(env.a.stomp_port), session(env.a.stomp_port, bob, rooms=[r2]) as peer:
        await subscribed(peer, f"/topic/room.{r2}", "news", **DURABLE)
        await peer.send_frame("DISCONNECT", {"receipt": "bye"})
        await peer.receipt("bye")
    async with Canary(env.a.stomp_port):
        async with session(env.a.stomp_port, alice, rooms=[r1]) as thief:
            error = await refused(
                thief,
                "SUBSCRIBE",
                {"id": "s", "destination": f"/topic/room.{r1}", **DURABLE, "x-queue-name": bobs},
            )
        assert refused_for(error, alice) == (
            f"x-queue-name '{bobs}' is outside your namespace: name your queues "
            f"{user_namespace(alice)}<name>"
        )
        # bob's queue is bound to his room only, and what is sent there waits for him alone
        assert binding_keys(env.vhost, bobs) == {f"room.{r2}"}
        async with session(env.b.stomp_port, unique("svc"), roles=["service"]) as service:
            await send(service, f"/topic/room.{r2}", "for bob")
            await send(service, f"/topic/room.{r1}", "for r1")
        assert await queue_depth(env.vhost, bobs) == 1
        async with session(env.b.stomp_port, bob, rooms=[r2]) as peer:
            await subscribed(peer, f"/topic/room.{r2}", "news", **DURABLE)
            assert (await next_message(peer)).body == "for bob"
            await nothing_more(peer)


async def test_destinations_cannot_reach_another_users_queues(env: Env) -> None:
    mallory, bob = unique("mallory"), unique("bob")
    bobs_durable = durable_queue_name(bob, "s", "/topic/room.x")
    bobs_named = user_namespace(bob) + "inbox"
    async with Canary(env.a.stomp_port):
        for destination, queue in [
            (f"/amq/queue/{bobs_durable}", bobs_durable),
            (f"/queue/{bobs_named}", bobs_named),
            ("/queue/stompgate.persist", "stompgate.persist"),
            (f"/amq/queue/stompgate.node.{unique('n')}", None),
        ]:
            async with session(env.a.stomp_port, mallory) as peer:
                error = await refused(peer, "SUBSCRIBE", {"id": "s", "destination": destination})
            why = refused_for(error, mallory)
            name = destination.split("/")[-1]
            owner = "belongs to another user" if "stompgate.u." in name or "dsub" in name else ""
            assert why == f"queue '{name}' {owner or 'is reserved'}"
            if queue is not None:
                assert queue not in queue_names(env.vhost)  # nothing was declared
        # a service may send to /queue/**, but not into reserved or other users' queues
        service = unique("svc")
        for destination in ("/queue/stompgate.persist", f"/amq/queue/{bobs_durable}"):
            async with session(env.a.stomp_port, service, roles=["service"]) as peer:
                error = await refused(peer, "SEND", {"destination": destination}, "injected")
            refused_for(error, service)
        assert "stompgate.persist" not in queue_names(env.vhost)


# -- x-queue-name: one's own namespace, and rules --------------------------------------------


async def test_x_queue_name_in_ones_own_namespace_reaches_native_amqp(env: Env) -> None:
    r1, alice = unique("r1"), unique("alice")
    mine = user_namespace(alice) + "r1-feed"
    async with Canary(env.a.stomp_port), session(env.a.stomp_port, alice, rooms=[r1]) as peer:
        await subscribed(peer, f"/topic/room.{r1}", "mine", **{"x-queue-name": mine})
        assert binding_keys(env.vhost, mine) == {f"room.{r1}"}
        connection = await aiormq.connect(rabbit.amqp_url(env.vhost))
        try:
            channel = await connection.channel()
            await channel.basic_publish(b"native", exchange="", routing_key=mine)
        finally:
            await connection.close()
        message = await next_message(peer)
        assert (message.body, message.headers["destination"]) == ("native", f"/queue/{mine}")
        # a plain name is someone else's, or nobody's yet: refused
        async with session(env.a.stomp_port, alice, rooms=[r1]) as other:
            error = await refused(
                other,
                "SUBSCRIBE",
                {"id": "s", "destination": f"/topic/room.{r1}", "x-queue-name": "r1-feed"},
            )
        refused_for(error, alice)
        assert "r1-feed" not in queue_names(env.vhost)


async def test_a_queue_rule_opens_more_names(env: Env) -> None:
    room, rita = unique("rep"), unique("rita")
    shared = unique("reports.daily")
    async with (
        Canary(env.a.stomp_port),
        session(env.a.stomp_port, rita, rooms=[room], roles=["reporter"]) as peer,
    ):
        await subscribed(peer, f"/topic/room.{room}", "r", **{"x-queue-name": shared})
        assert binding_keys(env.vhost, shared) == {f"room.{room}"}
    async with session(env.a.stomp_port, unique("ann"), rooms=[room]) as peer:
        other = unique("reports.weekly")
        headers = {"id": "r", "destination": f"/topic/room.{room}", "x-queue-name": other}
        error = await refused(peer, "SUBSCRIBE", headers)
    assert error.message == "access_refused"
    assert error.body.startswith("Access refused for user 'ann-")


# -- dead letters ---------------------------------------------------------------------------


async def test_dead_letter_targets_are_authorized_as_sends(env: Env) -> None:
    r1, r2, alice, bob = unique("r1"), unique("r2"), unique("alice"), unique("bob")
    before = queue_names(env.vhost)
    cases = [
        (
            {"x-dead-letter-exchange": "amq.topic", "x-dead-letter-routing-key": f"room.{r2}"},
            f"dead-letter target /topic/room.{r2} is authorized as a SEND there: "
            f"SEND to /topic/room.{r2} denied: requires role service",
        ),
        (
            {
                "x-dead-letter-exchange": "stompgate.user",
                "x-dead-letter-routing-key": f"{bob}/inbox",
            },
            f"dead-letter target /exchange/stompgate.user/{bob}%2Finbox is authorized as a SEND "
            "there: destination has a forbidden character '%' at position "
            f"{len('/exchange/stompgate.user/' + bob)}",
        ),
        (
            {
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": durable_queue_name(bob, "s", f"/topic/room.{r2}"),
            },
            f"queue '{durable_queue_name(bob, 's', f'/topic/room.{r2}')}' belongs to another user",
        ),
        (
            {"x-dead-letter-exchange": "amq.topic"},
            "x-dead-letter-exchange without x-dead-letter-routing-key: dead letters would keep "
            "their own routing keys, which cannot be authorized in advance; give "
            "x-dead-letter-routing-key",
        ),
    ]
    async with (
        Canary(env.a.stomp_port),
        session(env.a.stomp_port, bob, rooms=[r2]) as victim,
    ):
        await subscribed(victim, f"/topic/room.{r2}", "r2")
        await subscribed(victim, "/user/queue/inbox", "inbox")
        jobs = []
        for n, (arguments, detail) in enumerate(cases):
            async with session(env.a.stomp_port, alice, rooms=[r1]) as peer:
                headers = {"id": "s", "destination": f"/topic/room.{r1}", "ack": "client"}
                error = await refused(peer, "SUBSCRIBE", {**headers, **arguments})
            assert refused_for(error, alice) == detail
            if n == 0:
                continue  # a service may send to any topic: a dead letter there is its right
            jobs.append(unique("jobs"))
            async with session(env.a.stomp_port, unique("svc"), roles=["service"]) as service:
                error = await refused(
                    service, "SEND", {"destination": f"/queue/{jobs[-1]}", **arguments}, "x"
                )
            assert error.message == "access_refused"
            assert error.body.startswith("Access refused for user 'svc-")
        # nothing was declared, so nothing can be NACKed into bob's room or inbox
        made = [q for q in rabbit.list_queues(env.vhost) if q["name"] not in before]
        assert [q["name"] for q in made if "x-dead-letter-exchange" in q["arguments"]] == []
        assert not set(jobs) & queue_names(env.vhost)
        await nothing_more(victim)


# -- reply queues ---------------------------------------------------------------------------


async def test_reply_queues_are_for_replies_only(env: Env) -> None:
    room, carol = unique("rpc"), unique("carol")
    async with (
        Canary(env.a.stomp_port),
        session(env.a.stomp_port, unique("asker"), roles=["service"]) as asker,
        session(env.a.stomp_port, carol, rooms=[room]) as peer,
    ):
        await subscribed(peer, f"/topic/room.{room}", "q")
        await send(asker, f"/topic/room.{room}", "question?", **{"reply-to": "/temp-queue/a"})
        reply_to = (await next_message(peer)).headers["reply-to"]
        assert reply_to.startswith("/reply-queue/amq.gen-")
        await send(peer, reply_to, "answer!")  # what a reply queue is for
        answer = await next_message(asker)
        assert (answer.body, answer.headers["subscription"]) == ("answer!", "/temp-queue/a")
        async with session(env.a.stomp_port, carol, rooms=[room]) as thief:
            error = await refused(thief, "SUBSCRIBE", {"id": "t", "destination": reply_to})
        queue = reply_to.removeprefix("/reply-queue/")
        assert refused_for(error, carol) == f"queue '{queue}' is reserved"
        async with session(env.a.stomp_port, carol) as other:
            error = await refused(other, "SEND", {"destination": "/reply-queue/orders"}, "x")
        assert refused_for(error, carol) == (
            "a SEND to /reply-queue/ may only reach a queue the broker named (amq.gen-*, "
            "someone's temp queue): 'orders' is not one"
        )
        await send(peer, reply_to, "still the asker's")
        assert (await next_message(asker)).body == "still the asker's"


# -- queue arguments ------------------------------------------------------------------------


async def test_queue_arguments_on_an_allow_list_with_bounds(env: Env) -> None:
    room, dora = unique("args"), unique("dora")
    async with Canary(env.a.stomp_port):
        for headers, detail in [
            ({"x-max-lenght": "5"}, "unknown queue argument 'x-max-lenght': a SUBSCRIBE takes "),
            (
                {"x-max-length": "2000000"},
                "x-max-length must be between 0 and 1000000 here: got 2000000",
            ),
            ({"x-max-priority": "200"}, "x-max-priority must be between 1 and 10 here: got 200"),
        ]:
            async with session(env.a.stomp_port, dora, rooms=[room]) as peer:
                subscribe = {"id": "s", "destination": f"/topic/room.{room}", "ack": "client"}
                error = await refused(peer, "SUBSCRIBE", {**subscribe, **headers})
            assert error.message == "Invalid header"
            assert error.body.startswith(detail)
        async with session(env.a.stomp_port, dora, rooms=[room]) as peer:
            await subscribed(
                peer, f"/topic/room.{room}", "ok", ack="client", **{"x-max-length": "10"}
            )


# -- the cap, listing and deleting ----------------------------------------------------------


def durable_records(env: Env, user: str) -> set[str]:
    keys = env.redis.hkeys(f"{env.prefix}dsub:{user}")
    return {key.decode() if isinstance(key, bytes) else key for key in keys}


async def test_durable_subscriptions_are_capped_across_nodes(env: Env) -> None:
    room, erin = unique("cap"), unique("erin")
    topic = f"/topic/room.{room}"
    async with Canary(env.a.stomp_port):
        async with session(env.a.stomp_port, erin, rooms=[room]) as peer:
            for n in range(MAX_DURABLE - 1):
                await subscribed(peer, topic, f"d{n}", **DURABLE)
        async with session(env.b.stomp_port, erin, rooms=[room]) as peer:
            await subscribed(peer, topic, f"d{MAX_DURABLE - 1}", **DURABLE)
            await subscribed(peer, topic, "d0", **DURABLE)  # its own again: not a new one
            headers = {"id": "one-more", "destination": topic, **DURABLE}
            error = await refused(peer, "SUBSCRIBE", headers)
        assert error.message == "Durable subscription limit exceeded"
        assert error.body.startswith(f"user '{erin}' has {MAX_DURABLE} durable subscriptions")
        assert durable_queue_name(erin, "one-more", topic) not in queue_names(env.vhost)
        async with session(env.a.stomp_port, erin, rooms=[room]) as peer:
            # UNSUBSCRIBE with durable:true cancels one: there is room for another again
            await subscribed(peer, topic, "d1", **DURABLE)
            await peer.send_frame("UNSUBSCRIBE", {"id": "d1", "durable": "true", "receipt": "u"})
            await peer.receipt("u")
            await subscribed(peer, topic, "one-more", **DURABLE)
        assert len(durable_records(env, erin)) == MAX_DURABLE


async def test_users_list_and_delete_their_own_over_stomp(env: Env) -> None:
    room, fay, gus = unique("api"), unique("fay"), unique("gus")
    topic = f"/topic/room.{room}"
    queue = durable_queue_name(fay, "keep", topic)
    async with Canary(env.a.stomp_port), session(env.a.stomp_port, fay, rooms=[room]) as peer:
        await subscribed(peer, topic, "keep", **DURABLE)
        await subscribed(peer, "/user/queue/durable-subscriptions", "answers")
        seen = await send(peer, "/app/durable-subscriptions/list", "", **{"correlation-id": "c1"})
        answer = await next_message(peer, seen)
        assert answer.headers["correlation-id"] == "c1"
        listing = json.loads(answer.body)
        assert (listing["user"], listing["namespace"], listing["limit"]) == (
            fay,
            user_namespace(fay),
            MAX_DURABLE,
        )
        [entry] = listing["subscriptions"]
        assert (entry["queue"], entry["id"], entry["destination"], entry["messages"]) == (
            queue,
            "keep",
            topic,
            0,
        )
        async with session(env.b.stomp_port, gus) as other:  # not gus's to delete
            await subscribed(other, "/user/queue/durable-subscriptions", "answers")
            seen = await send(other, "/app/durable-subscriptions/delete", "", queue=queue)
            assert json.loads((await next_message(other, seen)).body) == {
                "queue": queue,
                "deleted": False,
            }
        assert queue in queue_names(env.vhost)
        seen = await send(peer, "/app/durable-subscriptions/delete", "", queue=queue)
        answer = await next_message(peer, seen)
        assert json.loads(answer.body) == {"queue": queue, "deleted": True}
        assert queue not in queue_names(env.vhost)
        assert durable_records(env, fay) == set()


def http(method: str, url: str, token: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else None


async def test_users_list_and_delete_their_own_over_http(env: Env) -> None:
    room, hal, ivy = unique("http"), unique("hal"), unique("ivy")
    topic = f"/topic/room.{room}"
    queue = durable_queue_name(hal, "d", topic)
    async with Canary(env.a.stomp_port):
        async with session(env.a.stomp_port, hal, rooms=[room]) as peer:
            await subscribed(peer, topic, "d", **DURABLE)
        url = f"{env.b.http_url}/api/durable-subscriptions"
        status, body = await asyncio.to_thread(http, "GET", url, hs_token(hal))
        assert status == 200
        assert [s["queue"] for s in body["subscriptions"]] == [queue]
        assert (await asyncio.to_thread(http, "GET", url, None))[0] == 401
        status, body = await asyncio.to_thread(http, "DELETE", f"{url}/{queue}", hs_token(ivy))
        assert (status, body) == (
            404,
            {"error": f"user '{ivy}' has no durable subscription '{queue}'"},
        )
        assert queue in queue_names(env.vhost)
        status, body = await asyncio.to_thread(http, "DELETE", f"{url}/{queue}", hs_token(hal))
        assert (status, body) == (200, {"queue": queue, "deleted": True})
        assert queue not in queue_names(env.vhost)


def cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    settings = {
        "STOMPGATE_AMQP_URL": env.a.amqp_url,
        "STOMPGATE_REDIS_URL": env.redis_url,
        "STOMPGATE_REDIS_PREFIX": env.prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway", "durable-subscriptions", *args],
        cwd=ROOT,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_operators_list_and_delete_with_the_cli(env: Env) -> None:
    room, jan = unique("ops"), unique("jan")
    topic = f"/topic/room.{room}"
    queue = durable_queue_name(jan, "d", topic)
    async with session(env.a.stomp_port, jan, rooms=[room]) as peer:
        await subscribed(peer, topic, "d", **DURABLE)
    listed = await asyncio.to_thread(cli, env, "list", "--user", jan)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[:4] == [jan, queue, "d", topic]
    assert line.split("\t")[-1] == "0"
    everyone = await asyncio.to_thread(cli, env, "list", "--json")
    assert {"user": jan, "queue": queue} in [
        {"user": row["user"], "queue": row["queue"]} for row in json.loads(everyone.stdout)
    ]
    missing = await asyncio.to_thread(cli, env, "delete", "--user", jan, "nope")
    assert (missing.returncode, missing.stdout) == (
        1,
        f"no durable subscription nope of user {jan}\n",
    )
    deleted = await asyncio.to_thread(cli, env, "delete", "--user", jan, queue)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted {queue} (user {jan})\n")
    assert queue not in queue_names(env.vhost)
    assert durable_records(env, jan) == set()
