"""Queue authority without a broker: namespaces, ownership, reserved names, argument bounds,
and the gatekeeper's one call per plan (queues, dead-letter targets, arguments)."""

from __future__ import annotations

import pytest

from gateway.auth.acl import Acl
from gateway.auth.authority import NO_AUTHORITY, Authority, QueueRole, QueueUse
from gateway.auth.errors import AccessRefused, QueueArgumentRefused
from gateway.auth.gatekeeper import Gatekeeper
from gateway.auth.identity import Identity
from gateway.auth.queue_policy import (
    DEFAULT_ARGUMENT_LIMITS,
    QueuePolicy,
    durable_queue_name,
    owner_tag,
    owns,
    user_key,
    user_namespace,
)

ALICE = Identity(user="alice", roles=frozenset({"member"}), rooms=frozenset({"r1"}))
BOB = Identity(user="bob", roles=frozenset({"member"}), rooms=frozenset({"r2"}))
SERVICE = Identity(user="svc", roles=frozenset({"service"}))
REPORTER = Identity(user="rita", roles=frozenset({"reporter"}))
DEV = Identity(user="guest", dev=True)

RULES = """
version = 1

[[rule]]
pattern = "/topic/room.{room}"
actions = ["subscribe"]
rooms = "{room}"

[[rule]]
pattern = "/topic/**"
actions = ["send"]
roles = ["service"]

[[rule]]
pattern = "/queue/**"
actions = ["send"]
roles = ["service"]

[[rule]]
pattern = "/queue/reports.**"
actions = ["queue"]
roles = ["reporter"]
"""


def gate(policy: QueuePolicy | None = None) -> Gatekeeper:
    return Gatekeeper(Acl.from_toml(RULES), queues=policy)


def named(name: str) -> Authority:
    return Authority(queues=(QueueUse(name, QueueRole.NAMED),))


def at(name: str) -> Authority:
    return Authority(queues=(QueueUse(name, QueueRole.DESTINATION),))


async def refused(gatekeeper: Gatekeeper, identity: Identity, authority: Authority) -> str:
    with pytest.raises(AccessRefused) as info:
        await gatekeeper.authorize(identity, authority)
    assert info.value.message == "access_refused"
    first, _, why = info.value.detail.partition("\n")
    assert first == f"Access refused for user '{identity.user}'"
    return why


# -- names ---------------------------------------------------------------------------------


def test_user_keys_are_readable_and_never_collide() -> None:
    assert user_namespace("alice") == "stompgate.u.alice."
    assert user_key("alice.smith@example.com") == "alice:smith@example:com"
    users = ["a.b", "a:b", "a..b", ".ab", "ab.", "a b", "a/b", "", "x" * 64, "x" * 65, "ä", "::"]
    keys = [user_key(u) for u in users]
    assert len(set(keys)) == len(users)
    readable = {"a.b": "a:b", "x" * 64: "x" * 64}
    for user, key in zip(users, keys, strict=True):
        assert key == readable.get(user, key) if user in readable else key.startswith("::")
    # Nobody's namespace is a prefix of someone else's: the key ends at a dot no key holds.
    assert not user_namespace("bob").startswith(user_namespace("bo"))


def test_a_durable_queue_names_its_owner() -> None:
    name = durable_queue_name("alice", "sub-0", "/topic/room.r1")
    assert name.startswith("stompgate.dsub." + owner_tag("alice"))
    assert owns("alice", name)
    assert not owns("bob", name)
    assert not owns(None, name)
    assert owns("alice", "stompgate.u.alice.inbox")
    assert not owns("alice", "stompgate.u.alice:smith.inbox")
    assert not owns("alice", "stompgate.u.alicex.inbox")
    assert not owns("alice", "orders")


def test_queue_refusals_by_role() -> None:
    policy = QueuePolicy(reserved=("stompgate.*", "amq.*", "workers.audit"))
    bobs = durable_queue_name("bob", "s", "/topic/room.r2")

    def refusal(name: str, role: QueueRole) -> str | None:
        return policy.queue_refusal("alice", QueueUse(name, role))

    assert refusal("orders", QueueRole.DESTINATION) is None
    assert refusal("stompgate.u.alice.x", QueueRole.DESTINATION) is None
    assert refusal(bobs, QueueRole.DESTINATION) == f"queue '{bobs}' belongs to another user"
    assert refusal("stompgate.persist", QueueRole.DESTINATION) == (
        "queue 'stompgate.persist' is reserved"
    )
    assert refusal("workers.audit", QueueRole.DESTINATION) == "queue 'workers.audit' is reserved"
    assert refusal("workers.audit.dlq", QueueRole.DESTINATION) is None
    assert refusal("orders", QueueRole.NAMED) == (
        "x-queue-name 'orders' is outside your namespace: name your queues stompgate.u.alice.<name>"
    )
    assert refusal("stompgate.u.alice.mine", QueueRole.NAMED) is None
    assert refusal("amq.gen-AbC", QueueRole.REPLY) is None
    assert refusal("orders", QueueRole.REPLY) == (
        "a SEND to /reply-queue/ may only reach a queue the broker named (amq.gen-*, "
        "someone's temp queue): 'orders' is not one"
    )


def test_argument_bounds() -> None:
    policy = QueuePolicy(queue_types=("classic", "quorum"))
    assert policy.argument_refusal({"x-max-length": 1_000_000, "x-queue-type": "quorum"}) is None
    assert policy.argument_refusal({"x-max-length": 1_000_001}) == (
        "x-max-length must be between 0 and 1000000 here: got 1000001"
    )
    assert policy.argument_refusal({"x-max-priority": 11}) == (
        "x-max-priority must be between 1 and 10 here: got 11"
    )
    assert policy.argument_refusal({"x-queue-type": "stream"}) == (
        "x-queue-type must be one of classic, quorum here: got 'stream'"
    )
    assert policy.argument_refusal({"x-single-active-consumer": True}) is None


def test_policy_from_the_environment() -> None:
    policy = QueuePolicy.from_env(
        {
            "STOMPGATE_RESERVED_QUEUES": "team.*, audit",
            "STOMPGATE_QUEUE_TYPES": "quorum",
            "STOMPGATE_QUEUE_ARGUMENT_LIMITS": "x-max-length=5000000,x-max-priority=2:5",
            "STOMPGATE_MAX_DURABLE_SUBSCRIPTIONS": "7",
        }
    )
    assert policy.reserved == ("stompgate.*", "amq.*", "team.*", "audit")
    assert policy.queue_types == ("quorum",)
    assert policy.argument_limits["x-max-length"] == (0, 5_000_000)
    assert policy.argument_limits["x-max-priority"] == (2, 5)
    assert policy.argument_limits["x-expires"] == DEFAULT_ARGUMENT_LIMITS["x-expires"]
    assert policy.max_durable_subscriptions == 7
    assert QueuePolicy.from_env({}) == QueuePolicy()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QUEUE_TYPES", "fast", "queue types must be some of classic, quorum, stream"),
        ("QUEUE_ARGUMENT_LIMITS", "x-max-length", "expected x-name=high or x-name=low:high"),
        ("QUEUE_ARGUMENT_LIMITS", "x-foo=3", "no limit can be set for 'x-foo'"),
        ("QUEUE_ARGUMENT_LIMITS", "x-max-length=9:3", "must be 0 <= low <= high"),
        ("MAX_DURABLE_SUBSCRIPTIONS", "-1", "must be >= 0"),
    ],
)
def test_bad_policy_settings(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QueuePolicy.from_env({f"STOMPGATE_{variable}": value})


# -- the gatekeeper ---------------------------------------------------------------------------


async def test_nothing_to_authorize() -> None:
    await gate().authorize(ALICE, NO_AUTHORITY)
    assert not NO_AUTHORITY


async def test_own_queues_and_rules() -> None:
    gatekeeper = gate()
    await gatekeeper.authorize(ALICE, named("stompgate.u.alice.inbox"))
    await gatekeeper.authorize(ALICE, at(durable_queue_name("alice", "s", "/topic/room.r1")))
    await gatekeeper.authorize(REPORTER, named("reports.daily"))
    await gatekeeper.authorize(SERVICE, at("orders"))
    assert await refused(gatekeeper, ALICE, named("reports.daily")) == (
        "x-queue-name 'reports.daily' is outside your namespace: name your queues "
        "stompgate.u.alice.<name>"
    )
    bobs = durable_queue_name("bob", "s", "/topic/room.r2")
    assert await refused(gatekeeper, ALICE, named(bobs)) == (
        f"x-queue-name '{bobs}' is outside your namespace: name your queues "
        "stompgate.u.alice.<name>"
    )
    assert await refused(gatekeeper, SERVICE, at("stompgate.persist")) == (
        "queue 'stompgate.persist' is reserved"
    )


async def test_a_queue_rule_may_open_a_reserved_name() -> None:
    acl = Acl.from_toml(
        RULES + '\n[[rule]]\npattern = "/queue/stompgate.persist"\nactions = ["queue"]\n'
        'roles = ["ops"]\n'
    )
    ops = Identity(user="olga", roles=frozenset({"ops"}))
    await Gatekeeper(acl).authorize(ops, at("stompgate.persist"))
    assert await refused(Gatekeeper(acl), SERVICE, at("stompgate.persist")) == (
        "queue 'stompgate.persist' is reserved"
    )


async def test_dead_letter_targets_are_sends() -> None:
    gatekeeper = gate()
    await gatekeeper.authorize(SERVICE, Authority(dead_letters=("/topic/room.r2",)))
    detail = await refused(gatekeeper, ALICE, Authority(dead_letters=("/topic/room.r2",)))
    assert detail == (
        "dead-letter target /topic/room.r2 is authorized as a SEND there: "
        "SEND to /topic/room.r2 denied: requires role service"
    )
    # A routing key with a slash (a user queue's key) is no SEND destination at all.
    target = "/exchange/stompgate.user/bob%2Finbox"
    detail = await refused(gatekeeper, SERVICE, Authority(dead_letters=(target,)))
    assert detail.startswith(f"dead-letter target {target} is authorized as a SEND there: ")
    assert "forbidden character '%'" in detail


async def test_dead_letters_without_a_routing_key_are_refused() -> None:
    detail = await refused(gate(), SERVICE, Authority(dead_letter_unbounded=True))
    assert detail.startswith("x-dead-letter-exchange without x-dead-letter-routing-key")


async def test_arguments_are_bounded_for_everyone() -> None:
    policy = QueuePolicy(argument_limits={"x-max-length": (0, 10)})
    with pytest.raises(QueueArgumentRefused) as info:
        await gate(policy).authorize(DEV, Authority(arguments={"x-max-length": 11}))
    assert info.value.message == "Invalid header"
    assert info.value.detail == "x-max-length must be between 0 and 10 here: got 11"
    assert info.value.reason == "queue_argument"


async def test_development_identities_may_use_every_queue() -> None:
    gatekeeper = gate()
    everything = Authority(
        queues=(QueueUse("anything", QueueRole.NAMED), QueueUse("stompgate.x", QueueRole.REPLY)),
        dead_letters=("/topic/room.r2",),
        dead_letter_unbounded=True,
    )
    await gatekeeper.authorize(DEV, everything)
