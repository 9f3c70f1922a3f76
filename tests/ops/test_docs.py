"""The operator's documentation: linked from the README, and its links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "rabbitmq" / "README.md", *ROOT.glob("docs/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page",
    [
        "architecture.md",
        "operations.md",
        "configuration.md",
        "migrating.md",
        "adding-a-consumer.md",
        "security.md",
    ],
)
def test_the_readme_links_each_page(page: str) -> None:
    assert f"](docs/{page})" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []


def test_the_architecture_page_has_a_diagram() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert "```mermaid" in text
    assert "flowchart" in text
