"""The store is core: it imports neither the gateway nor the workers, and the gateway does not
import the workers (it reads history through this package)."""

from __future__ import annotations

from pathlib import Path

import gateway
import store
from tests.stomp.test_no_io import imported_modules

STORE = Path(store.__file__).parent
GATEWAY = Path(gateway.__file__).parent


def offending_imports(package: Path, forbidden: set[str]) -> dict[str, set[str]]:
    offenders: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        bad = {name for name in imported_modules(path) if name.split(".")[0] in forbidden}
        if bad:
            offenders[str(path.relative_to(package))] = bad
    return offenders


def test_store_imports_neither_gateway_nor_workers() -> None:
    assert len(list(STORE.glob("*.py"))) >= 4
    assert offending_imports(STORE, {"gateway", "workers"}) == {}


def test_gateway_does_not_import_the_workers() -> None:
    assert offending_imports(GATEWAY, {"workers"}) == {}


def test_scanner_sees_a_lazy_import(tmp_path: Path) -> None:
    sample = tmp_path / "pkg"
    sample.mkdir()
    (sample / "m.py").write_text("def f() -> None:\n    from workers.store import open_store\n")
    assert offending_imports(sample, {"workers"}) == {"m.py": {"workers.store"}}
