"""The adapter's seams, read from the source: the connection, the node and the interfaces
between them import nothing above them, and each ``stompgate-*`` header name has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway
from gateway import stomp_headers

GATEWAY = Path(gateway.__file__).parent


def gateway_imports(path: Path) -> set[str]:
    """The ``gateway.*`` modules a file imports (TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("gateway.")}


def offending(path: Path, forbidden: tuple[str, ...]) -> set[str]:
    return {
        name
        for name in gateway_imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    }


ABOVE_THE_ADAPTER = ("gateway.app", "gateway.transport", "gateway.__main__")
FEATURES = ("gateway.relay", "gateway.chat", "gateway.chat_bridge", "gateway.router")


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("connection.py", (*ABOVE_THE_ADAPTER, "gateway.node", *FEATURES)),
        ("confirm_window.py", (*ABOVE_THE_ADAPTER, "gateway.node", "gateway.connection")),
        ("sender.py", (*ABOVE_THE_ADAPTER, "gateway.node", "gateway.connection", *FEATURES)),
        (
            "subscriptions.py",
            (*ABOVE_THE_ADAPTER, "gateway.node", "gateway.connection", *FEATURES),
        ),
        ("ports.py", (*ABOVE_THE_ADAPTER, "gateway.node", "gateway.connection", *FEATURES)),
        ("node.py", (*ABOVE_THE_ADAPTER, "gateway.connection", "gateway.ports", *FEATURES)),
        ("lifecycle.py", (*ABOVE_THE_ADAPTER, "gateway.connection", "gateway.node", *FEATURES)),
        ("router.py", (*ABOVE_THE_ADAPTER, "gateway.connection", "gateway.node")),
        ("chat/catch_up.py", (*ABOVE_THE_ADAPTER, "gateway.connection", "gateway.relay")),
        ("delivery.py", (*ABOVE_THE_ADAPTER, "gateway.connection", "gateway.node", *FEATURES)),
    ],
)
def test_no_import_reaches_up(module: str, forbidden: tuple[str, ...]) -> None:
    assert offending(GATEWAY / module, forbidden) == set()


def test_the_checker_sees_type_checking_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway.node import Node\n"
    )
    assert offending(sample, ("gateway.node",)) == {"gateway.node", "gateway.node.Node"}


def test_each_stompgate_header_name_is_written_once() -> None:
    names = {stomp_headers.MESSAGE_ID, stomp_headers.ROOM_SEQ, stomp_headers.REPLAY}
    names.add(stomp_headers.REPLAY_MORE)
    homes: dict[str, list[str]] = {name: [] for name in names}
    for path in sorted(GATEWAY.rglob("*.py")):
        relative = path.relative_to(GATEWAY).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in homes:
                homes[node.value].append(relative)
    assert homes == {name: ["stomp_headers.py"] for name in names}
