"""/temp-queue/ in reply-to: a private reply queue, answered through /reply-queue/."""

from __future__ import annotations

from tests.relay.conftest import RelayFactory
from tests.relay.helpers import RecordingSink


async def test_request_reply_across_nodes(make_relay: RelayFactory, fresh_vhost: str) -> None:
    node1, node2 = await make_relay(), await make_relay()
    server = RecordingSink("server")
    await node2.subscribe(server, "rpc", "/queue/rpc", "auto", {})
    client = RecordingSink("client")
    await node1.publish(
        client,
        "/queue/rpc",
        [("reply-to", "/temp-queue/answers"), ("correlation-id", "42")],
        b"what time is it?",
    )
    (request,) = await server.wait_for(1)
    reply_to = request.header("reply-to")
    assert reply_to is not None
    assert reply_to.startswith("/reply-queue/amq.gen-")
    assert request.header("correlation-id") == "42"

    await node2.publish(server, reply_to, [("correlation-id", "42")], b"noon")
    (reply,) = await client.wait_for(1)
    assert reply.subscription == "/temp-queue/answers"
    assert reply.body == b"noon"
    assert reply.header("correlation-id") == "42"
    assert reply.ack_id is None

    # The same temp queue is reused for the next request of this session.
    await node1.publish(client, "/queue/rpc", [("reply-to", "/temp-queue/answers")], b"again")
    await server.wait_for(2)
    assert server.deliveries[1].header("reply-to") == reply_to

    # Once the client's session is gone, its reply queue is gone too; replying does not fail.
    await node1.detach(client)
    await node2.publish(server, reply_to, [], b"nobody listens")
