"""chat.message.v1 events as the gateway's chat layer publishes them (for worker tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel


def chat_event(
    id_: int,
    room: str = "lobby",
    *,
    sender: str = "alice",
    client_id: str | None = None,
    sent_at: int = 1_700_000_000_000,
    text: str = "hello",
) -> bytes:
    """A valid chat.message.v1 body (ids travel as decimal strings)."""
    return orjson.dumps(
        {
            "v": 1,
            "type": "message",
            "id": str(id_),
            "room": room,
            "sender": sender,
            "client_id": client_id if client_id is not None else f"c-{id_}",
            "text": text,
            "sent_at": sent_at,
        }
    )


async def publish_events(
    ch: AbstractChannel,
    events: Sequence[tuple[str, bytes]],
    *,
    event_type: str = "message",
    window: int = 200,
    exchange_name: str = "amq.topic",
) -> None:
    """Publish (room, body) pairs to `exchange_name` (amq.topic) room.<room>, persistent,
    confirmed in windows."""
    exchange = await ch.get_exchange(exchange_name)
    for start in range(0, len(events), window):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body,
                        headers={"event-type": event_type},
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=f"room.{room}",
                )
                for room, body in events[start : start + window]
            )
        )
