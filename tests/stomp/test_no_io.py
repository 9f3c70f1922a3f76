"""The protocol core must stay sans-I/O: no event loop, socket, thread or clock."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.stomp

FORBIDDEN = {"asyncio", "socket", "time", "datetime", "threading", "selectors", "ssl"}
PACKAGE = Path(gateway.stomp.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            names.add("<dynamic __import__>")
    return names


def test_package_has_modules() -> None:
    assert len(list(PACKAGE.glob("*.py"))) >= 8


def test_no_io_imports_anywhere_in_package() -> None:
    offenders: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        bad = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] in FORBIDDEN or name.startswith("<")
        }
        if bad:
            offenders[path.name] = bad
    assert offenders == {}


def test_scanner_detects_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom time import monotonic\nimport asyncio.tasks\n")
    assert {"time", "asyncio.tasks", "os"} <= imported_modules(sample)
