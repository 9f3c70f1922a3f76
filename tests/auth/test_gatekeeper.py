"""Gatekeeper: destination hygiene before the ACL, sender stamping."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.acl import Acl
from gateway.auth.errors import AccessDenied, DestinationRejected
from gateway.auth.gatekeeper import Gatekeeper
from gateway.auth.identity import Identity
from gateway.auth.limits import AbuseLimits

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "acl.toml")


async def test_gatekeeper_strips_spoofed_sender() -> None:
    gate = Gatekeeper(Acl.from_file(EXAMPLE), sender_header="sender")
    alice = Identity(user="alice", rooms=frozenset({"7"}))
    headers = await gate.authorize_send(
        alice,
        "/app/rooms/7/messages",
        [("destination", "/app/rooms/7/messages"), ("sender", "bob"), ("user-id", "bob")],
    )
    assert headers == (("sender", "alice"), ("destination", "/app/rooms/7/messages"))


async def test_gatekeeper_hygiene_before_acl() -> None:
    gate = Gatekeeper(Acl.from_file(EXAMPLE), limits=AbuseLimits(max_destination_length=20))
    admin = Identity(user="root", roles=frozenset({"admin"}))
    with pytest.raises(DestinationRejected) as rejected:
        await gate.authorize_send(admin, "/topic/room.*", [])
    assert (
        rejected.value.detail == "wildcards are not allowed in SEND destinations: '/topic/room.*'"
    )
    with pytest.raises(DestinationRejected) as too_long:
        await gate.authorize_subscribe(admin, "/topic/" + "a" * 20)
    assert too_long.value.detail == "destination too long: 27 bytes > 20"
    await gate.authorize_subscribe(admin, "/topic/room.*")
    with pytest.raises(AccessDenied) as denied:
        await gate.authorize_subscribe(Identity(user="bob"), "/topic/room.*")
    assert denied.value.detail == (
        "SUBSCRIBE to /topic/room.* denied: wildcard subscriptions are not allowed here"
    )
