"""`python -m workers NAME` / `stompgate-worker NAME`: run one worker until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from workers.registry import UnknownWorkerError, resolve
from workers.settings import WorkerSettings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stompgate-worker",
        description="Run a stompgate worker. Settings come from STOMPGATE_* variables.",
    )
    parser.add_argument(
        "worker",
        help="'persist', 'translate', 'notify', or 'package.module:app' for your own worker",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = WorkerSettings.from_env()
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
        asyncio.run(app.run())
    else:
        uvloop.run(app.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
