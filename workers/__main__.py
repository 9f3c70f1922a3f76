"""`python -m workers NAME` / `stompgate-worker NAME`: run one worker until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from chatstate.deployment import NamespaceClashError
from workers.registry import UnknownWorkerError, resolve
from workers.settings import WorkerSettings

#: Flags: (flag, variable without STOMPGATE_, help). Each wins over its variable.
FLAGS = (
    (
        "--deployment",
        "DEPLOYMENT",
        "deployment name: first word of the queues the worker declares (default stompgate)",
    ),
    ("--topic-exchange", "TOPIC_EXCHANGE", "the rooms' topic exchange (default amq.topic)"),
    ("--store", "STORE", "message store: sqlite:///path or mongodb://host/db"),
    (
        "--queue",
        "PERSIST_QUEUE",
        "persist worker: its queue (default <deployment>.persist); one queue per store",
    ),
    ("--redis-url", "REDIS_URL", "Redis of the deployment (default redis://127.0.0.1:6379/0)"),
    (
        "--redis-prefix",
        "REDIS_PREFIX",
        "prefix of the deployment's Redis keys (default <deployment>:)",
    ),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stompgate-worker",
        description="Run a stompgate worker. Settings come from STOMPGATE_* variables; the flags"
        " below win over theirs.",
    )
    parser.add_argument(
        "worker",
        help="'persist', 'translate', 'notify', or 'package.module:app' for your own worker",
    )
    for flag, variable, text in FLAGS:
        parser.add_argument(
            flag,
            dest=variable,
            default=None,
            metavar=variable,
            help=f"{text} [env STOMPGATE_{variable}]",
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = WorkerSettings.from_env(
            flags={variable: getattr(args, variable) for _, variable, _ in FLAGS}
        )
    except ValueError as exc:
        print(f"stompgate-worker: {exc}", file=sys.stderr)
        return 2
    try:
        app = resolve(args.worker, settings)
    except (UnknownWorkerError, ValueError) as exc:  # ValueError: a misspelt setting
        print(f"stompgate-worker: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(app.run())
    except NamespaceClashError as exc:
        logging.getLogger("stompgate.workers").critical("%s", exc)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
