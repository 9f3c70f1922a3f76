"""The relay's planner, without a broker: what each SUBSCRIBE and SEND becomes."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

import gateway.relay.planner as planner_module
from gateway.auth.authority import NO_AUTHORITY, Authority, QueueRole, QueueUse
from gateway.auth.errors import QueueArgumentRefused
from gateway.relay import DestinationError, PublishError, RelaySettings, SubscribeError
from gateway.relay.destinations import parse_destination
from gateway.relay.planner import (
    Binding,
    ConsumerPlan,
    FanoutPlan,
    PublishPlan,
    QueueSpec,
    SubscribePlan,
    durable_queue_name,
    parse_publish,
    parse_subscribe,
    plan_publish,
    plan_subscribe,
    reply_temp_queue,
    temp_queue_plan,
    unsubscribe_deletes_queue,
    user_routing_key,
)

SETTINGS = RelaySettings(node_id="node-7", default_prefetch=42)
DURABLE = {"durable": "true", "auto-delete": "false"}


def subscribe(
    destination: str,
    ack: str = "auto",
    headers: Mapping[str, str] | None = None,
    *,
    user: str | None = "alice",
    subscription_id: str = "sub-0",
) -> SubscribePlan:
    dest = parse_subscribe(subscription_id, destination, ack)
    return plan_subscribe(
        SETTINGS,
        subscription_id=subscription_id,
        destination=destination,
        dest=dest,
        ack=ack,
        headers=headers or {},
        user=user,
    )


def consumer(
    destination: str,
    ack: str = "client",
    headers: Mapping[str, str] | None = None,
    *,
    user: str | None = "alice",
) -> ConsumerPlan:
    plan = subscribe(destination, ack, headers, user=user)
    assert isinstance(plan, ConsumerPlan)
    return plan


def publish(
    destination: str,
    headers: Mapping[str, str] | None = None,
    *,
    user: str | None = "alice",
    reply_to: str | None = None,
    declared: frozenset[str] = frozenset(),
) -> PublishPlan:
    return plan_publish(
        SETTINGS,
        parse_publish(destination),
        headers or {},
        user=user,
        reply_to=reply_to,
        declared=declared,
    )


def private(
    name: str, *, unique: bool = False, arguments: Mapping[str, int] | None = None
) -> QueueSpec:
    """A private queue: not durable, auto-delete, exclusive."""
    return QueueSpec(
        name,
        durable=False,
        auto_delete=True,
        exclusive=True,
        arguments=dict(arguments or {}),
        unique=unique,
    )


# -- SUBSCRIBE: the node fan-out ------------------------------------------------------------


def test_auto_topic_is_served_by_the_node_fanout() -> None:
    assert subscribe("/topic/room.1") == FanoutPlan("sub-0", "/topic/room.1", "amq.topic", "room.1")
    assert subscribe("/topic/room.*") == FanoutPlan("sub-0", "/topic/room.*", "amq.topic", "room.*")


def test_exchange_amq_topic_is_a_topic() -> None:
    plan = subscribe("/exchange/amq.topic/t.1")
    assert plan == FanoutPlan("sub-0", "/exchange/amq.topic/t.1", "amq.topic", "t.1")


def test_a_fanout_subscription_does_not_read_consumer_headers() -> None:
    # prefetch-count and x- arguments mean nothing for the node queue (as before the split).
    plan = subscribe("/topic/t", headers={"prefetch-count": "lots", "x-max-length": "x"})
    assert isinstance(plan, FanoutPlan)


def test_durable_header_without_auto_delete_false_stays_on_the_fanout() -> None:
    assert isinstance(subscribe("/topic/t", headers={"durable": "true"}), FanoutPlan)
    no = {"durable": "true", "auto-delete": "true"}
    assert isinstance(subscribe("/topic/t", headers=no), FanoutPlan)


def test_own_user_queue_with_auto_ack_is_on_the_fanout() -> None:
    plan = subscribe("/user/queue/notes", user="al ice/x")
    assert plan == FanoutPlan(
        "sub-0", "/user/queue/notes", "stompgate.user", "al%20ice%2Fx/notes", "/user/queue/notes"
    )


# -- SUBSCRIBE: own consumers ---------------------------------------------------------------


def test_client_ack_topic_gets_a_private_queue_bound_to_amq_topic() -> None:
    plan = consumer("/topic/room.1")
    assert plan == ConsumerPlan(
        "sub-0",
        "/topic/room.1",
        "client",
        42,
        private("stompgate.sub.node-7", unique=True),
        check_exchange=None,  # amq.* exchanges always exist
        binding=Binding("amq.topic", "room.1"),
    )


def test_private_queue_may_be_named_and_take_arguments() -> None:
    plan = consumer(
        "/topic/t", "client-individual", {"x-queue-name": " mine ", "x-max-length": "5"}
    )
    assert plan.queue == private("mine", arguments={"x-max-length": 5})
    assert plan.ack == "client-individual"


def test_exchange_subscriptions_check_the_exchange() -> None:
    plan = consumer("/exchange/logs/error", "auto")
    assert plan.check_exchange == "logs"
    assert plan.binding == Binding("logs", "error")
    assert plan.queue.unique
    assert consumer("/exchange/logs", "auto").binding == Binding("logs", "")
    assert consumer("/exchange/amq.direct/k", "auto").check_exchange is None


def test_durable_subscription() -> None:
    plan = consumer("/topic/room.9", "auto", DURABLE)
    name = durable_queue_name("alice", "sub-0", "/topic/room.9")
    assert plan.durable
    assert plan.queue == QueueSpec(name, arguments={"x-queue-type": "quorum"}, lenient=True)
    assert plan.binding == Binding("amq.topic", "room.9")
    # persistent:true counts as durable:true, as in RabbitMQ's plugin.
    persistent = consumer("/topic/room.9", "auto", {"persistent": "TRUE", "auto-delete": "false"})
    assert persistent.durable
    assert persistent.queue == plan.queue


def test_durable_subscription_with_explicit_name_and_type() -> None:
    headers = {**DURABLE, "x-queue-name": "bob-news", "x-queue-type": "classic"}
    plan = consumer("/exchange/news/k", "client", headers, user="bob")
    assert plan.queue == QueueSpec("bob-news", arguments={"x-queue-type": "classic"})
    assert not plan.queue.lenient  # explicit arguments: a conflicting queue is an error
    assert plan.check_exchange == "news"
    assert plan.durable


def test_durable_applies_to_topics_and_exchanges_only() -> None:
    assert not consumer("/queue/jobs", "auto", DURABLE).durable
    assert not consumer("/user/queue/n", "client", DURABLE).durable


def test_durable_queue_name_is_deterministic_and_depends_on_all_three() -> None:
    name = durable_queue_name("alice", "sub-0", "/topic/a")
    assert name == durable_queue_name("alice", "sub-0", "/topic/a")
    assert name.startswith("stompgate.dsub.")
    assert len(name) == len("stompgate.dsub.") + 40
    others = {
        durable_queue_name("bob", "sub-0", "/topic/a"),
        durable_queue_name("alice", "sub-1", "/topic/a"),
        durable_queue_name("alice", "sub-0", "/topic/b"),
        durable_queue_name(None, "sub-0", "/topic/a"),
    }
    assert name not in others
    assert len(others) == 4


def test_queue_subscription_declares_the_queue() -> None:
    assert consumer("/queue/jobs", "auto").queue == QueueSpec("jobs", lenient=True)
    plan = consumer("/queue/jobs", "auto", {"durable": "false", "auto-delete": "true"})
    assert plan.queue == QueueSpec("jobs", durable=False, auto_delete=True, lenient=True)
    plan = consumer("/queue/jobs", "auto", {"x-max-length": "10", "x-queue-type": "quorum"})
    assert plan.queue == QueueSpec(
        "jobs", arguments={"x-max-length": 10, "x-queue-type": "quorum"}, lenient=False
    )
    assert plan.binding is None
    assert plan.check_exchange is None


@pytest.mark.parametrize(
    ("destination", "queue"),
    [("/amq/queue/existing", "existing"), ("/reply-queue/amq.gen-x/y", "amq.gen-x/y")],
)
def test_existing_queues_are_only_checked(destination: str, queue: str) -> None:
    plan = consumer(destination, "auto", {"x-max-length": "10"})
    assert plan.queue == QueueSpec(queue, passive=True)
    assert plan.binding is None


def test_user_queue_with_client_ack_gets_a_private_queue_on_the_user_exchange() -> None:
    plan = consumer("/user/queue/jobs", "client", user="dave")
    assert plan.binding == Binding("stompgate.user", "dave/jobs")
    assert plan.check_exchange == "stompgate.user"  # known once declared: no broker call
    assert plan.shown_destination == "/user/queue/jobs"
    assert plan.queue.exclusive


def test_prefetch_count() -> None:
    assert consumer("/queue/q").prefetch == 42
    assert consumer("/queue/q", headers={"prefetch-count": " 7 "}).prefetch == 7
    assert consumer("/queue/q", headers={"prefetch-count": "0"}).prefetch == 0
    assert consumer("/queue/q", headers={"prefetch-count": "65535"}).prefetch == 65535


@pytest.mark.parametrize("value", ["-1", "65536", "lots", "", "١٢", "1.5"])
def test_bad_prefetch_count(value: str) -> None:
    with pytest.raises(SubscribeError, match="prefetch-count must be an integer 0-65535"):
        consumer("/queue/q", headers={"prefetch-count": value})


@pytest.mark.parametrize("name", ["", "   ", "amq.mine", "x" * 256])
def test_bad_queue_name(name: str) -> None:
    with pytest.raises(SubscribeError, match="x-queue-name must be 1-255 bytes"):
        consumer("/topic/t", headers={"x-queue-name": name})


def test_bad_queue_arguments() -> None:
    with pytest.raises(SubscribeError, match="x-queue-type' must be one of"):
        consumer("/queue/q", "auto", {"x-queue-type": "fast"})
    with pytest.raises(SubscribeError, match="x-max-length' must be an integer"):
        consumer("/topic/t", "client", {"x-max-length": "many"})


# -- SUBSCRIBE: refusals --------------------------------------------------------------------


def test_ack_mode_is_checked_first() -> None:
    with pytest.raises(SubscribeError, match="ack must be auto, client or client-individual"):
        parse_subscribe("/temp-queue/x", "/temp-queue/x", "sometimes")


def test_temp_queues_cannot_be_subscribed_and_their_ids_are_reserved() -> None:
    with pytest.raises(DestinationError, match="only be used in a reply-to"):
        parse_subscribe("s", "/temp-queue/r", "auto")
    with pytest.raises(SubscribeError, match="starting with /temp-queue/ are reserved"):
        parse_subscribe("/temp-queue/r", "/topic/t", "auto")


def test_bad_destinations() -> None:
    with pytest.raises(DestinationError, match="must be whole words"):
        parse_subscribe("s", "/topic/a*", "auto")
    with pytest.raises(DestinationError, match="must start with"):
        parse_subscribe("s", "/nowhere", "auto")


def test_user_queues_need_a_user_and_are_ones_own() -> None:
    with pytest.raises(SubscribeError, match="need an authenticated user"):
        subscribe("/user/queue/x", user=None)
    with pytest.raises(DestinationError, match="another user's queue"):
        subscribe("/user/bob/queue/x", user="alice")
    with pytest.raises(DestinationError, match="too long together"):
        subscribe("/user/queue/" + "q" * 200, user="u" * 100)


def test_unsubscribe_deletes_only_a_durable_subscriptions_queue_when_asked() -> None:
    assert unsubscribe_deletes_queue(True, {"durable": "true"})
    assert unsubscribe_deletes_queue(True, {"persistent": "true"})
    assert not unsubscribe_deletes_queue(True, {})
    assert not unsubscribe_deletes_queue(True, None)  # the client went away
    assert not unsubscribe_deletes_queue(False, {"durable": "true"})


def test_temp_queue_plan() -> None:
    plan = temp_queue_plan(SETTINGS, "r1")
    assert plan == ConsumerPlan(
        "/temp-queue/r1",
        "/temp-queue/r1",
        "auto",
        42,
        QueueSpec("", durable=False, auto_delete=True, exclusive=True),
    )


def test_plans_are_frozen() -> None:
    plan = consumer("/queue/q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.prefetch = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.queue.name = "other"  # type: ignore[misc]


# -- SEND -----------------------------------------------------------------------------------


def test_topic_send() -> None:
    plan = publish("/topic/room.1", {"content-type": "text/plain", "kind": "chat"})
    assert (plan.exchange, plan.routing_key, plan.mandatory) == ("amq.topic", "room.1", False)
    assert plan.properties.delivery_mode == 2
    assert plan.properties.content_type == "text/plain"
    assert plan.properties.headers == {"kind": "chat"}
    assert plan.declare is None
    assert plan.check_exchange is None


def test_queue_send_declares_the_queue_once() -> None:
    plan = publish("/queue/jobs")
    assert (plan.exchange, plan.routing_key) == ("", "jobs")
    assert plan.declare == QueueSpec("jobs", lenient=True)
    with_args = publish("/queue/jobs", {"x-max-length": "3"})
    assert with_args.declare == QueueSpec("jobs", arguments={"x-max-length": 3})
    # Declared already on this connection: nothing to declare, x- headers not read again.
    again = publish("/queue/jobs", {"x-max-length": "bad"}, declared=frozenset({"jobs"}))
    assert again.declare is None
    with pytest.raises(PublishError, match="x-max-length' must be an integer"):
        publish("/queue/jobs", {"x-max-length": "bad"})


def test_amq_queue_send_is_mandatory() -> None:
    plan = publish("/amq/queue/q1")
    assert (plan.exchange, plan.routing_key, plan.mandatory) == ("", "q1", True)
    assert plan.unroutable == "no such queue 'q1'"


def test_exchange_send_checks_the_exchange() -> None:
    plan = publish("/exchange/logs/error")
    assert (plan.exchange, plan.routing_key, plan.check_exchange) == ("logs", "error", "logs")
    assert publish("/exchange/logs").routing_key == ""
    assert publish("/exchange/amq.fanout").check_exchange is None


def test_reply_queue_send() -> None:
    plan = publish("/reply-queue/amq.gen-abc")
    assert (plan.exchange, plan.routing_key) == ("", "amq.gen-abc")


def test_user_queue_send() -> None:
    plan = publish("/user/bob/queue/notes", user="alice")
    assert (plan.exchange, plan.routing_key) == ("stompgate.user", "bob/notes")
    own = publish("/user/queue/notes", user="alice")
    assert own.routing_key == "alice/notes"
    assert publish("/user/bob/queue/notes", user=None).routing_key == "bob/notes"
    with pytest.raises(DestinationError, match="needs an authenticated user"):
        publish("/user/queue/notes", user=None)


def test_send_refusals() -> None:
    with pytest.raises(DestinationError, match="only be used in a reply-to"):
        parse_publish("/temp-queue/r")
    with pytest.raises(DestinationError, match="only allowed when subscribing"):
        parse_publish("/topic/a.*")
    with pytest.raises(PublishError, match="'priority' must be an integer"):
        publish("/topic/t", {"priority": "high"})


def test_reply_to() -> None:
    assert reply_temp_queue(None) is None
    assert reply_temp_queue("/queue/replies") is None
    assert reply_temp_queue("/temp-queue/r1") == "r1"
    with pytest.raises(DestinationError):
        reply_temp_queue("/temp-queue/")
    plan = publish("/topic/t", {"reply-to": "/temp-queue/r1"}, reply_to="/reply-queue/amq.gen-1")
    assert plan.properties.reply_to == "/reply-queue/amq.gen-1"
    assert publish("/topic/t", {"reply-to": "/queue/r"}).properties.reply_to == "/queue/r"


def test_user_routing_key() -> None:
    assert user_routing_key("a/b c", "n") == "a%2Fb%20c/n"
    with pytest.raises(DestinationError):
        user_routing_key("u" * 200, "q" * 60)


def test_parse_destination_agrees_with_the_plans() -> None:
    # The plan keeps the text the client wrote; the parsed form is only read.
    text = "/queue/a%2Fb"
    assert consumer(text, "auto").queue.name == "a/b"
    assert consumer(text, "auto").destination == text
    assert str(parse_destination(text)) == text


# -- no I/O ---------------------------------------------------------------------------------

FORBIDDEN = {
    "aiormq",
    "asyncio",
    "random",
    "secrets",
    "selectors",
    "socket",
    "ssl",
    "threading",
    "time",
}
#: The relay modules the planner may use: rules and data, no broker.
PURE_SIBLINGS = {"destinations", "errors", "headers", "settings"}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(absolute modules, sibling modules) that ``path`` imports."""
    absolute: set[str] = set()
    siblings: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            absolute.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            (siblings if node.level else absolute).add(node.module)
    return absolute, siblings


def test_the_planner_does_no_io() -> None:
    path = Path(planner_module.__file__)
    absolute, siblings = _imports(path)
    assert {name for name in absolute if name.split(".")[0] in FORBIDDEN} == set()
    assert siblings <= PURE_SIBLINGS
    # Its siblings are pure too (errors.py imports aiormq only to describe aiormq's errors).
    for sibling in PURE_SIBLINGS - {"errors"}:
        absolute, _ = _imports(path.with_name(f"{sibling}.py"))
        assert {name for name in absolute if name.split(".")[0] in FORBIDDEN} == set(), sibling


# -- authority: what each plan needs besides its destination ---------------------------------


def dest_use(name: str) -> QueueUse:
    return QueueUse(name, QueueRole.DESTINATION)


def test_plans_that_name_no_queue_need_nothing() -> None:
    assert subscribe("/topic/room.1").authority == NO_AUTHORITY
    assert consumer("/topic/room.1").authority == NO_AUTHORITY  # a private queue
    assert consumer("/topic/room.1", "auto", DURABLE).authority == NO_AUTHORITY  # its own
    assert consumer("/exchange/logs/error").authority == NO_AUTHORITY
    assert publish("/topic/room.1").authority == NO_AUTHORITY
    assert publish("/exchange/logs/error").authority == NO_AUTHORITY
    assert publish("/user/bob/queue/notes").authority == NO_AUTHORITY
    assert temp_queue_plan(SETTINGS, "r").authority == NO_AUTHORITY


def test_queue_destinations_list_their_queue() -> None:
    assert consumer("/queue/jobs").authority == Authority(queues=(dest_use("jobs"),))
    assert consumer("/amq/queue/q").authority == Authority(queues=(dest_use("q"),))
    assert consumer("/reply-queue/amq.gen-1").authority == Authority(
        queues=(dest_use("amq.gen-1"),)
    )
    assert publish("/queue/jobs").authority == Authority(queues=(dest_use("jobs"),))
    declared = publish("/queue/jobs", {"x-max-length": "9"}, declared=frozenset({"jobs"}))
    assert declared.authority == Authority(queues=(dest_use("jobs"),))
    assert publish("/amq/queue/q").authority == Authority(queues=(dest_use("q"),))
    assert publish("/reply-queue/amq.gen-1").authority == Authority(
        queues=(QueueUse("amq.gen-1", QueueRole.REPLY),)
    )


def test_x_queue_name_is_a_named_queue_and_takes_the_topic_off_the_fanout() -> None:
    for ack in ("auto", "client"):
        plan = consumer("/topic/room.1", ack, {"x-queue-name": "stompgate.u.alice.r1"})
        assert plan.authority == Authority(
            queues=(QueueUse("stompgate.u.alice.r1", QueueRole.NAMED),)
        )
        assert plan.binding == Binding("amq.topic", "room.1")
        # no x- arguments: a queue of that name that exists already is used as it is
        assert plan.queue.lenient
    durable = consumer("/topic/room.1", "auto", {**DURABLE, "x-queue-name": "bobs"})
    assert durable.authority.queues == (QueueUse("bobs", QueueRole.NAMED),)


def test_arguments_and_dead_letter_targets() -> None:
    headers = {
        "x-max-length": "10",
        "x-dead-letter-exchange": "amq.topic",
        "x-dead-letter-routing-key": "room.r2",
    }
    plan = consumer("/topic/room.1", "client", headers)
    assert plan.authority == Authority(
        dead_letters=("/topic/room.r2",),
        arguments={
            "x-max-length": 10,
            "x-dead-letter-exchange": "amq.topic",
            "x-dead-letter-routing-key": "room.r2",
        },
    )
    to_queue = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "inbox"}
    plan = consumer("/queue/jobs", "client", to_queue)
    assert plan.authority.dead_letters == ("/queue/inbox",)
    assert plan.authority.queues == (dest_use("jobs"), dest_use("inbox"))
    user_key = {"x-dead-letter-exchange": "stompgate.user", "x-dead-letter-routing-key": "bob/in"}
    assert publish("/queue/jobs", user_key).authority.dead_letters == (
        "/exchange/stompgate.user/bob%2Fin",
    )
    unbounded = consumer("/topic/t", "client", {"x-dead-letter-exchange": "dlx"})
    assert unbounded.authority.dead_letter_unbounded
    assert unbounded.authority.dead_letters == ()


def test_a_dead_letter_key_needs_an_exchange() -> None:
    with pytest.raises(QueueArgumentRefused) as info:
        consumer("/queue/q", "client", {"x-dead-letter-routing-key": "k"})
    assert info.value.detail.startswith("x-dead-letter-routing-key needs x-dead-letter-exchange")


def test_existing_queues_declare_nothing_so_their_arguments_need_nothing() -> None:
    assert consumer("/amq/queue/q", "auto", {"x-max-length": "10"}).authority.arguments == {}


def test_unknown_x_headers_are_refused_where_a_queue_is_declared() -> None:
    with pytest.raises(QueueArgumentRefused) as info:
        consumer("/topic/t", "client", {"x-max-lenght": "10"})
    assert info.value.message == "Invalid header"
    assert info.value.detail.startswith("unknown queue argument 'x-max-lenght': a SUBSCRIBE ")
    # ... not on a SEND, where x- headers are the message's own
    assert publish("/queue/q", {"x-origin": "svc"}).properties.headers == {"x-origin": "svc"}
