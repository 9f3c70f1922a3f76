"""Anonymous CONNECT: no ``login``, no token (issue 14.7).

In ``--auth dev`` (what ``make up`` runs) such a CONNECT is ``guest``, as RabbitMQ's
``default_user`` makes it on the plugin; a stock client that connects without credentials
works. In production (``jwt``) it is refused, unless an operator names the identity it gets
(``STOMPGATE_ANONYMOUS_USER``) and the roles its ACL rules match
(``STOMPGATE_ANONYMOUS_ROLES``); then it may do what those rules allow, and nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess
from tests.support.security import StompPeer, hs_token, jwt_env, jwt_gateways, redis_keys
from tests.support.stomp_client import stomp_client

PUBLIC_RULES = """
version = 1

[[rule]]
pattern = "/topic/public.**"
actions = ["subscribe"]
roles = ["public"]
"""


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_raw_anonymous_connect_is_guest_in_dev_mode(
    gateway: GatewayProcess, rabbit_vhost: str, version: str
) -> None:
    frame = f"CONNECT\naccept-version:{version}\nhost:{rabbit_vhost}\n\n\x00".encode()
    for side, port in (("rabbitmq", rabbit.RABBIT_STOMP_PORT), ("gateway", gateway.stomp_port)):
        async with StompPeer.tcp(port) as client:
            await client.send_raw(frame)
            connected = await client.frame()
            assert (connected.command, connected.headers["version"]) == ("CONNECTED", version)
            if side == "gateway":
                assert connected.headers["user-name"] == "guest"


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stomppy_without_credentials_works_in_dev_mode(
    gateway: GatewayProcess, version: str
) -> None:
    dest = f"/topic/anon.{uuid.uuid4().hex[:8]}"
    with (
        stomp_client(gateway.stomp_port, login=None, passcode=None, version=version) as anon,
        stomp_client(gateway.stomp_port, login=None, passcode=None, version=version) as other,
    ):
        anon.subscribe(dest, "s")
        other.send(dest, "hello, anonymously")
        [message] = anon.messages(1)
    assert message.body == "hello, anonymously"


@pytest.fixture(scope="module")
def nodes(amqp_url: str, redis_url: str, log_dir: Path) -> Iterator[dict[str, GatewayProcess]]:
    rules = log_dir / "public.toml"
    rules.write_text(PUBLIC_RULES)
    open_to_visitors = {
        "STOMPGATE_ACL_FILE": str(rules),
        "STOMPGATE_ANONYMOUS_USER": "visitor",
        "STOMPGATE_ANONYMOUS_ROLES": "public",
    }
    with redis_keys(redis_url) as (_, prefix):
        envs = [
            ("jwt-closed", jwt_env(prefix, STOMPGATE_ACL_FILE=str(rules))),
            ("jwt-open", jwt_env(prefix, **open_to_visitors)),
        ]
        with jwt_gateways(amqp_url, log_dir, envs) as (closed, open_):
            yield {"closed": closed, "open": open_}


async def test_anonymous_connect_is_refused_in_production(
    nodes: dict[str, GatewayProcess],
) -> None:
    async with StompPeer.tcp(nodes["closed"].stomp_port) as client:
        await client.send_raw(b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
        error = await client.frame()
        await client.expect_closed()
    assert (error.command, error.message, error.said) == ("ERROR", "Bad CONNECT", "missing token")
    assert error.headers["stompgate-reason"] == "auth"


async def test_an_operator_can_let_anonymous_clients_in_with_their_own_acl(
    nodes: dict[str, GatewayProcess],
) -> None:
    port = nodes["open"].stomp_port
    async with StompPeer.tcp(port) as visitor:
        await visitor.send_raw(b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
        connected = await visitor.frame()
        assert (connected.command, connected.headers["user-name"]) == ("CONNECTED", "visitor")
        await visitor.send_frame(
            "SUBSCRIBE", {"id": "news", "destination": "/topic/public.news", "receipt": "ok"}
        )
        assert (await visitor.receipt("ok"))[-1].command == "RECEIPT"
        await visitor.send_frame("SUBSCRIBE", {"id": "room", "destination": "/topic/room.x"})
        error = await visitor.expect_error()
    assert (error.message, error.said) == (
        "access_refused",
        "SUBSCRIBE to /topic/room.x denied: no rule allows it",
    )
    async with StompPeer.tcp(port) as named:  # a login without a token is not anonymous
        error = await named.connect_refused(headers=[("login", "someone")])
    assert (error.message, error.said) == ("Bad CONNECT", "missing token")
    async with StompPeer.tcp(port) as member:  # tokens work as before
        connected = await member.connect(hs_token("alice"))
        assert (connected.command, connected.headers["user-name"]) == ("CONNECTED", "alice")
