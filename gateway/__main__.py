"""``python -m gateway`` / ``stompgate``: run one gateway node."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from gateway.app import serve
from gateway.logs import configure
from gateway.settings import settings_from


def main(argv: Sequence[str] | None = None) -> None:
    settings = settings_from(sys.argv[1:] if argv is None else argv)
    configure(settings.log_level, settings.log_format)
    try:
        if settings.uvloop:
            try:
                import uvloop
            except ImportError:
                logging.getLogger("stompgate.app").info("uvloop not installed; using asyncio")
            else:
                uvloop.run(serve(settings))
                return
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
