"""The README is for newcomers: keep its settings table and commands true."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from gateway.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        row = next((line for line in README.splitlines() if line.startswith(f"| `{flag}` |")), None)
        assert row is not None, f"{flag} missing from the README settings table"
        assert f"`{env}`" in row
        if f.default is not dataclasses.MISSING and f.default not in ("", True, False):
            assert f"`{f.default}`" in row, f"{flag}: README default differs from {f.default!r}"


def test_documented_flags_exist() -> None:
    names = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(Settings)}
    for flag in re.findall(r"^\| `(--[a-z-]+)` \|", README, flags=re.MULTILINE):
        assert flag in names, f"README documents {flag}, which the gateway does not have"


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)`", README)):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target
