"""The layering of docs/internals.md, read from the source: no import reaches up a layer, no
import cycle among product modules, and the core packages import only what they may.

Every ``import`` counts, inside functions and ``TYPE_CHECKING`` blocks too: a type-only
import still ties two modules together. The table below is the one docs/internals.md opens
with; a test keeps the two in step.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "workers", "store", "schemas", "chatstate")

#: From the top down; a module imports only modules of its own layer or of layers below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry", ("gateway.__main__", "gateway.app", "gateway.durable_cli", "workers.__main__")),
    ("transports", ("gateway.transport",)),
    (
        "adapter",
        (
            "gateway.connection",
            "gateway.outbound",
            "gateway.sender",
            "gateway.confirm_window",
            "gateway.subscriptions",
        ),
    ),
    ("node", ("gateway.node", "gateway.lifecycle")),
    (
        "features",
        (
            "gateway.router",
            "gateway.chat_bridge",
            "gateway.chat",
            "gateway.presence_bridge",
            "gateway.presence",
            "gateway.durable_api",
            "gateway.demo",
            "gateway.access",
            "gateway.relay",
            "workers",
        ),
    ),
    (
        "core",
        (
            "gateway.stomp",
            "gateway.auth",
            "gateway.ports",
            "gateway.delivery",
            "gateway.errors",
            "gateway.stomp_headers",
            "gateway.settings",
            "gateway.logs",
            "gateway.metrics",
            "schemas",
            "store",
            "chatstate",
        ),
    ),
)

#: Packages that must stay apart even where the layers would allow an import.
APART: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gateway", ("workers",)),  # the gateway never depends on the workers
    ("workers", ("gateway",)),  # nor the workers on the gateway: they share store/schemas
    ("store", ("gateway", "workers", "chatstate")),
    ("chatstate", ("gateway", "workers")),  # shared by both: imports neither
    ("schemas", ("gateway", "workers", "store", "chatstate")),
    ("gateway.stomp", ("gateway.auth", "gateway.errors", "gateway.settings", "gateway.metrics")),
    ("gateway.auth", ("gateway.stomp", "gateway.settings", "gateway.metrics")),
    ("gateway.relay", ("gateway.chat", "gateway.chat_bridge", "gateway.access")),
    ("gateway.chat", ("gateway.relay", "gateway.access", "gateway.presence")),
    ("gateway.presence", ("gateway.relay", "gateway.access", "gateway.chat_bridge")),
)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def product_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = product_modules()


def _resolve(name: str) -> str | None:
    """The product module ``name`` refers to (a module, or a name inside one), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The product modules ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets: Iterable[str] = (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            targets = [t if _resolve(t) else base for t in targets]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer index): the longest prefix wins
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/internals.md")
    return best[1]


def test_every_product_module_has_a_layer() -> None:
    for module in MODULES:
        if module not in PACKAGES:
            layer_of(module)


def test_no_import_reaches_up_a_layer() -> None:
    upward = sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        if module not in PACKAGES
        for target in targets
        if target not in PACKAGES and layer_of(target) < layer_of(module)
    )
    assert upward == []


@pytest.mark.parametrize(("package", "forbidden"), APART)
def test_packages_that_stay_apart(package: str, forbidden: tuple[str, ...]) -> None:
    crossing = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _within(module, package)
        for target in targets
        if any(_within(target, f) for f in forbidden)
    )
    assert crossing == []


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def _without_package_reexports(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` that re-exports its own submodules is not a cycle with them:
    drop the edges from a package to modules inside it."""
    return {
        module: {t for t in targets if not t.startswith(module + ".")}
        for module, targets in graph.items()
    }


def test_no_import_cycles() -> None:
    assert list(_cycles(_without_package_reexports(GRAPH))) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(_cycles(graph)) == [["a", "b", "c"]]


def test_the_resolver_counts_type_checking_and_relative_imports() -> None:
    assert "gateway.stomp" in GRAPH["gateway.connection"]
    assert "gateway.relay.planner" in GRAPH["gateway.relay.relay"]  # from .planner import ...


def test_internals_map_lists_the_same_layers() -> None:
    """docs/internals.md's map table names each layer with the same packages as LAYERS."""
    text = (ROOT / "docs" / "internals.md").read_text(encoding="utf-8")
    shown = {
        match.group(1): set(re.findall(r"`([\w./]+)`", match.group(2)))
        for match in re.finditer(r"^\| \*\*(\w+)\*\* \|([^|]*)\|", text, re.MULTILINE)
    }
    expected = {name: {_as_path(prefix) for prefix in prefixes} for name, prefixes in LAYERS}
    assert shown == expected


def _as_path(prefix: str) -> str:
    """``gateway.app`` -> ``gateway/app.py``; ``gateway.relay`` -> ``gateway/relay/``."""
    path = MODULES[prefix]
    relative = path.relative_to(ROOT).as_posix()
    return relative.removesuffix("__init__.py") if path.name == "__init__.py" else relative
