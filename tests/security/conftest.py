"""Fixtures of the end-to-end security tests: real gateway processes in JWT mode."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-logs")
