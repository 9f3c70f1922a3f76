"""Settings that cannot be used: library code raises ConfigurationError, only the entry point
decides the message and the exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.__main__ import main
from gateway.access import build_access
from gateway.settings import ConfigurationError, Settings, settings_from


def test_a_bad_flag_value_is_a_configuration_error_naming_the_flag() -> None:
    with pytest.raises(ConfigurationError, match=r"^--http-port: invalid literal"):
        settings_from({"http_port": "abc"}, environ={})


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^STOMPGATE_HEARTBEAT_GRACE: "):
        settings_from({}, environ={"STOMPGATE_HEARTBEAT_GRACE": "often"})


def test_the_websocket_path_is_lean_or_aiohttp() -> None:
    assert settings_from({}, environ={}).ws_impl == "lean"
    assert settings_from({}, environ={"STOMPGATE_WS_IMPL": "aiohttp"}).ws_impl == "aiohttp"
    with pytest.raises(ConfigurationError, match=r"^--ws-impl must be lean or aiohttp, got 'h2'"):
        settings_from({"ws_impl": "h2"}, environ={})


def test_a_flag_wins_over_the_environment() -> None:
    settings = settings_from({"node_id": "flag"}, environ={"STOMPGATE_NODE_ID": "env"})
    assert settings.node_id == "flag"


def test_the_amqp_heartbeat_goes_into_the_broker_url_once() -> None:
    settings = settings_from({"amqp_heartbeat": "5"}, environ={})
    assert settings.broker_url == "amqp://guest:guest@127.0.0.1:5672/?heartbeat=5"
    env = {"STOMPGATE_AMQP_URL": "amqp://u:p@h/v?name=x", "STOMPGATE_AMQP_HEARTBEAT": "0"}
    assert settings_from({}, environ=env).broker_url == "amqp://u:p@h/v?name=x&heartbeat=0"
    same = settings_from({"amqp_url": "amqp://h/?heartbeat=60"}, environ={})
    assert same.broker_url == "amqp://h/?heartbeat=60"
    with pytest.raises(ConfigurationError, match=r"heartbeat=7 and --amqp-heartbeat 60: give"):
        settings_from({"amqp_url": "amqp://h/?heartbeat=7"}, environ={})
    with pytest.raises(ConfigurationError, match=r"--amqp-heartbeat must be 0\.\.65535"):
        settings_from({"amqp_heartbeat": "-1"}, environ={})


def test_the_post_idempotency_ttl_is_read_and_a_too_short_one_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert settings_from({}, environ={}).post_idempotency_ttl == 86400
    env = {"STOMPGATE_POST_IDEMPOTENCY_TTL": "600"}
    assert settings_from({}, environ=env).post_idempotency_ttl == 600
    assert settings_from({"post_idempotency_ttl": "60"}, environ=env).post_idempotency_ttl == 60
    with pytest.raises(ConfigurationError, match=r"--post-idempotency-ttl must be at least 60"):
        settings_from({}, environ={"STOMPGATE_POST_IDEMPOTENCY_TTL": "59"})
    assert main(["--post-idempotency-ttl", "0"]) == 1
    assert capsys.readouterr().err == (
        "stompgate: --post-idempotency-ttl must be at least 60 (seconds), got 0\n"
    )


def test_auth_settings_that_cannot_be_used_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"JWT_ALGORITHMS.*\(see docs/security.md\)$"):
        build_access(Settings(auth="jwt"), environ={})


def test_the_cli_prints_why_and_exits_with_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--max-unconfirmed", "-1"]) == 1
    assert capsys.readouterr().err == (
        "stompgate: --max-unconfirmed must not be negative, got -1\n"
    )


def test_the_cli_exits_with_1_on_auth_settings_it_cannot_use() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--auth", "jwt", "--uvloop", "false"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("stompgate: STOMPGATE_JWT_ALGORITHMS is")
