"""The deployment name and topic exchange as the gateway reads and uses them (#18): defaults
keep every historical name; another name renames what the node declares and owns."""

from __future__ import annotations

import pytest

from gateway.auth.authority import QueueRole, QueueUse
from gateway.auth.queue_policy import QueuePolicy, durable_queue_name, owns, user_namespace
from gateway.relay import RelaySettings
from gateway.relay.planner import FanoutPlan, parse_publish, plan_publish, plan_subscribe
from gateway.settings import ConfigurationError, Settings, settings_from


def test_defaults_are_the_historical_names() -> None:
    s = Settings()
    assert (s.deployment, s.topic_exchange, s.redis_prefix) == (
        "stompgate",
        "amq.topic",
        "stompgate:",
    )
    r = RelaySettings()
    assert (r.deployment, r.topic_exchange, r.user_exchange) == (
        "stompgate",
        "amq.topic",
        "stompgate.user",
    )
    assert user_namespace("alice") == "stompgate.u.alice."
    assert durable_queue_name("alice", "sub-0", "/topic/x").startswith("stompgate.dsub.")
    assert QueuePolicy().reserved == ("stompgate.*", "amq.*")


def test_the_deployment_names_the_redis_prefix_unless_one_is_given() -> None:
    assert settings_from(environ={"STOMPGATE_DEPLOYMENT": "blue"}).redis_prefix == "blue:"
    given = settings_from({"deployment": "blue", "redis_prefix": "x:"}, environ={})
    assert given.redis_prefix == "x:"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("deployment", "Blue", "--deployment"),
        ("deployment", "blue-", "--deployment"),
        ("deployment", "b" * 33, "--deployment"),
        ("topic_exchange", "amq.fanout", "--topic-exchange"),
        ("topic_exchange", "two words", "--topic-exchange"),
    ],
)
def test_bad_names_are_refused_clearly(flag: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        settings_from({flag: value}, environ={})


def test_another_deployment_owns_its_own_names_only() -> None:
    policy = QueuePolicy(deployment="blue")
    assert policy.reserved[0] == "blue.*"
    assert policy.is_reserved("blue.persist")
    assert policy.is_reserved("stompgate.registry.exchange.amq.topic")  # always
    mine = durable_queue_name("alice", "sub-0", "/topic/x", "blue")
    assert mine.startswith("blue.dsub.")
    assert owns("alice", mine, "blue")
    assert not owns("bob", mine, "blue")
    assert policy.queue_refusal("alice", QueueUse(mine, QueueRole.DESTINATION)) is None
    theirs = QueueUse(durable_queue_name("bob", "sub-0", "/topic/x", "blue"), QueueRole.DESTINATION)
    assert policy.queue_refusal("alice", theirs) == f"queue '{theirs.name}' belongs to another user"
    named = QueueUse("stompgate.u.alice.q", QueueRole.NAMED)  # the default deployment's name
    refusal = policy.queue_refusal("alice", named)
    assert refusal is not None
    assert "blue.u.alice.<name>" in refusal


def test_topics_go_to_the_deployments_topic_exchange() -> None:
    settings = RelaySettings(deployment="blue", topic_exchange="blue-rooms")
    plan = plan_subscribe(
        settings,
        subscription_id="s",
        destination="/topic/room.x",
        dest=parse_publish("/topic/room.x"),
        ack="auto",
        headers={},
        user="alice",
    )
    assert isinstance(plan, FanoutPlan)
    assert plan.exchange == "blue-rooms"
    sent = plan_publish(
        settings, parse_publish("/topic/room.x"), {}, user="alice", reply_to=None, declared=set()
    )
    assert (sent.exchange, sent.routing_key) == ("blue-rooms", "room.x")
    assert settings.user_exchange == "blue.user"
