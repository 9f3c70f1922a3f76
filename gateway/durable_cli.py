"""``python -m gateway durable-subscriptions``: an operator's view of durable subscriptions.

::

    python -m gateway durable-subscriptions list [--user USER] [--json]
    python -m gateway durable-subscriptions delete --user USER QUEUE [QUEUE ...]

It works against Redis (the records: :class:`~gateway.relay.durable.DurableRegistry`) and the
broker (each queue's message count; deleting a queue), with the gateway's own settings:
``--amqp-url``, ``--redis-url`` and ``--redis-prefix`` or their ``STOMPGATE_*`` variables.
``list`` prints one line per durable subscription (user, queue, id, destination, created,
messages waiting), or JSON; ``delete`` deletes each queue with what it held, then its record.
The exit status is 0, or 1 when a queue to delete is not one of the user's durable
subscriptions (or a setting cannot be used).

:func:`build_parser` and :func:`run` are for ``gateway/__main__.py``, which parses the
arguments and decides the exit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from typing import TextIO

import aiormq
import aiormq.abc

from chatstate.amqp_urls import split_amqp_urls
from chatstate.client import client_name, redis_client
from gateway.relay.durable import DurableInfo, DurableRegistry, DurableSubscriptions
from gateway.relay.topology import Topology
from gateway.settings import ConfigurationError, settings_from

__all__ = ["COMMAND", "build_parser", "run"]

COMMAND = "durable-subscriptions"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"stompgate {COMMAND}",
        description="List or delete users' durable subscriptions (Redis records and queues).",
    )
    for flag, help_text in (
        ("--amqp-url", "RabbitMQ AMQP URL [env STOMPGATE_AMQP_URL]"),
        ("--redis-url", "Redis URL [env STOMPGATE_REDIS_URL]"),
        ("--redis-prefix", "prefix of Redis keys [env STOMPGATE_REDIS_PREFIX]"),
    ):
        parser.add_argument(flag, default=None, help=help_text)
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list durable subscriptions")
    listing.add_argument("--user", help="only this user's (default: every user's)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    delete = actions.add_parser("delete", help="delete durable subscriptions of a user")
    delete.add_argument("--user", required=True, help="whose durable subscriptions")
    delete.add_argument("queues", nargs="+", metavar="QUEUE", help="their queues")
    return parser


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Carry out parsed ``args``; the exit status. Raises ConfigurationError."""
    flags = {name: getattr(args, name) for name in ("amqp_url", "redis_url", "redis_prefix")}
    settings = settings_from(flags)
    work = _run(args, settings.amqp_url, settings.redis_url, settings.redis_prefix, out)
    try:
        return asyncio.run(work)
    except (OSError, aiormq.exceptions.AMQPError) as exc:
        raise ConfigurationError(f"cannot reach the broker or Redis: {exc}") from None


async def _run(
    args: argparse.Namespace, amqp_url: str, redis_url: str, prefix: str, out: TextIO
) -> int:
    redis = redis_client(redis_url, name=client_name("durable-cli"))
    connection = await _connect_any(split_amqp_urls(amqp_url))
    try:
        topology = Topology(lambda: connection)

        async def delete(queue: str) -> None:
            await topology.delete_queue(queue, strict=True)

        service = DurableSubscriptions(
            DurableRegistry(redis, key_prefix=prefix, limit=0),
            messages=topology.queue_messages,
            delete=delete,
        )
        if args.action == "list":
            users = [args.user] if args.user else await service.registry.users()
            found = [(user, info) for user in users for info in await service.list(user)]
            _print(found, as_json=args.json, out=out)
            return 0
        status = 0
        for queue in args.queues:
            if await service.delete(args.user, queue):
                print(f"deleted {queue} (user {args.user})", file=out)
            else:
                print(f"no durable subscription {queue} of user {args.user}", file=out)
                status = 1
        return status
    finally:
        await connection.close()
        await redis.aclose()


async def _connect_any(urls: tuple[str, ...]) -> aiormq.abc.AbstractConnection:
    """A connection to the first of a cluster's nodes that answers (the last error else)."""
    for url in urls[:-1]:
        try:
            return await aiormq.connect(url)
        except (OSError, aiormq.exceptions.AMQPError):
            continue
    return await aiormq.connect(urls[-1])


def _print(found: list[tuple[str, DurableInfo]], *, as_json: bool, out: TextIO) -> None:
    if as_json:
        rows = [{"user": user, **info.as_json()} for user, info in found]
        print(json.dumps(rows, indent=2), file=out)
        return
    for user, info in found:
        record = info.record
        created = datetime.datetime.fromtimestamp(record.created / 1000, tz=datetime.UTC)
        messages = "?" if info.messages is None else str(info.messages)
        print(
            f"{user}\t{record.queue}\t{record.id}\t{record.destination}\t"
            f"{created.isoformat(timespec='seconds')}\t{messages}",
            file=out,
        )
