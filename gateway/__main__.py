"""``python -m gateway`` / ``stompgate``: run one gateway node; ``python -m gateway
durable-subscriptions ...``: list or delete users' durable subscriptions
(:mod:`gateway.durable_cli`).

The only place that decides how the process ends: a setting that cannot be used
(:class:`~gateway.settings.ConfigurationError`, from the flags, the environment or the auth
settings) prints ``stompgate: <why>`` on stderr and exits with 1; a usage error (an unknown
flag) exits with 2 and ``--help`` with 0, as argparse does; a deployment whose name or topic
exchange belongs to another node-id lease namespace
(:class:`~chatstate.deployment.NamespaceClashError`) logs one critical line naming both sides
and the fix, and exits with 3.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from chatstate.deployment import NamespaceClashError
from gateway import durable_cli
from gateway.app import serve
from gateway.logs import configure
from gateway.settings import ConfigurationError, Settings, build_parser, settings_from


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == [durable_cli.COMMAND]:
        return _durable_subscriptions(arguments[1:])
    flags = vars(build_parser().parse_args(arguments))
    try:
        settings = settings_from(flags)
        configure(settings.log_level, settings.log_format)
        _run(settings)
    except ConfigurationError as exc:
        print(f"stompgate: {exc}", file=sys.stderr)
        return 1
    except NamespaceClashError as exc:
        logging.getLogger("stompgate.app").critical("%s", exc)
        return 3
    except KeyboardInterrupt:
        pass
    return 0


def _durable_subscriptions(arguments: Sequence[str]) -> int:
    args = durable_cli.build_parser().parse_args(arguments)
    try:
        return durable_cli.run(args)
    except ConfigurationError as exc:
        print(f"stompgate: {exc}", file=sys.stderr)
        return 1


def _run(settings: Settings) -> None:
    if settings.uvloop:
        try:
            import uvloop
        except ImportError:
            logging.getLogger("stompgate.app").info("uvloop not installed; using asyncio")
        else:
            uvloop.run(serve(settings))
            return
    asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
