"""The pure auth modules stay pure: no clock, no I/O, no Redis; only pure modules below them."""

from __future__ import annotations

from pathlib import Path

import gateway.auth
from tests.stomp.test_no_io import imported_modules

PACKAGE = Path(gateway.auth.__file__).parent
PURE = {
    "gateway.auth._env",
    "gateway.auth.errors",
    "gateway.auth.hygiene",
    "gateway.auth.identity",
    "gateway.auth.limits",
    "gateway.auth.origin",
    "gateway.auth.rates",
    "gateway.auth.tokens",
}
PURE_OUTSIDE = {"gateway.errors"}
FORBIDDEN = {
    "asyncio",
    "socket",
    "time",
    "datetime",
    "threading",
    "selectors",
    "ssl",
    "os",
    "random",
    "uuid",
    "redis",
    "aiohttp",
    "aiormq",
    "logging",
}


def test_pure_modules_import_no_clock_or_io() -> None:
    offenders: dict[str, set[str]] = {}
    for module in sorted(PURE):
        path = PACKAGE / f"{module.rsplit('.', 1)[1]}.py"
        bad = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] in FORBIDDEN
            or name.startswith("<")
            or (name.startswith("gateway") and name not in PURE | PURE_OUTSIDE | {"gateway.auth"})
        }
        if bad:
            offenders[module] = bad
    assert offenders == {}


def test_the_io_module_is_the_counter() -> None:
    assert "redis.asyncio" in imported_modules(PACKAGE / "counter.py")
    assert not any(name.startswith("redis") for name in imported_modules(PACKAGE / "limits.py"))
