"""docs/configuration.md is generated from the settings and matches what the code reads."""

from __future__ import annotations

import pytest

from scripts import config_reference


def test_the_committed_reference_is_current() -> None:
    committed = config_reference.OUTPUT.read_text(encoding="utf-8")
    assert committed == config_reference.render(), "stale: run `make config-doc`"


def test_every_setting_read_is_documented_and_every_documented_one_read() -> None:
    assert config_reference.mismatches() == []


def test_the_names_come_from_the_code_paths_themselves() -> None:
    read = config_reference.read_names()
    assert "STOMPGATE_HTTP_PORT" in read["gateway"]
    assert "STOMPGATE_JWKS_MAX_KEYS" in read["auth"]  # read only when a JWKS URL is set
    assert "STOMPGATE_AUTH" in read["auth"]
    assert "STOMPGATE_WORKER_DRAIN_TIMEOUT" in read["worker"]
    assert "STOMPGATE_TRANSLATE_DEEPL_RATE" in read["translate"]  # per-provider limit


def test_a_setting_nobody_documents_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = config_reference.read_names

    def with_extra() -> dict[str, list[str]]:
        names = real()
        names["worker"].append("STOMPGATE_WORKER_NEW_THING")
        return names

    monkeypatch.setattr(config_reference, "read_names", with_extra)
    assert config_reference.mismatches() == [
        "worker: STOMPGATE_WORKER_NEW_THING is read by the code but not documented"
    ]
    with pytest.raises(ValueError, match="disagree"):
        config_reference.render()


def test_check_mode_reports_a_stale_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_reference.main(["--check"]) == 0
    monkeypatch.setattr(config_reference, "render", lambda: "something else")
    assert config_reference.main(["--check"]) == 1
