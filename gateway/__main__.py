"""``python -m gateway`` / ``stompgate``: run one gateway node.

The only place that decides how the process ends: a setting that cannot be used
(:class:`~gateway.settings.ConfigurationError`, from the flags, the environment or the auth
settings) prints ``stompgate: <why>`` on stderr and exits with 1; a usage error (an unknown
flag) exits with 2 and ``--help`` with 0, as argparse does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from gateway.app import serve
from gateway.logs import configure
from gateway.settings import ConfigurationError, Settings, build_parser, settings_from


def main(argv: Sequence[str] | None = None) -> int:
    flags = vars(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    try:
        settings = settings_from(flags)
        configure(settings.log_level, settings.log_format)
        _run(settings)
    except ConfigurationError as exc:
        print(f"stompgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


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
