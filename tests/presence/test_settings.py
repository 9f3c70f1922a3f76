"""Presence settings from the environment: defaults, parsing, values that cannot be used."""

from __future__ import annotations

import pytest

from gateway.app import Gateway
from gateway.presence import PresenceSettings
from gateway.settings import ConfigurationError, Settings


def test_defaults() -> None:
    settings = PresenceSettings.from_env({})
    assert settings == PresenceSettings()
    assert settings.enabled
    assert (settings.grace, settings.lease_seconds, settings.interval) == (30.0, 10.0, 1.0)
    assert (settings.active_every, settings.fanout_max) == (30.0, 100)


def test_every_variable_is_read() -> None:
    settings = PresenceSettings.from_env(
        {
            "STOMPGATE_PRESENCE": "off",
            "STOMPGATE_PRESENCE_GRACE": "6",
            "STOMPGATE_PRESENCE_LEASE": "2.5",
            "STOMPGATE_PRESENCE_INTERVAL": "0.5",
            "STOMPGATE_PRESENCE_ACTIVE_EVERY": "5",
            "STOMPGATE_PRESENCE_FANOUT_MAX": "0",
            "STOMPGATE_PRESENCE_UNKNOWN": "ignored",
        }
    )
    assert settings == PresenceSettings(False, 6.0, 2.5, 0.5, 5.0, 0)
    assert PresenceSettings.from_env({"STOMPGATE_PRESENCE_GRACE": "6"}).lease_seconds == 2.0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STOMPGATE_PRESENCE": "maybe"}, "STOMPGATE_PRESENCE: cannot use 'maybe'"),
        ({"STOMPGATE_PRESENCE_GRACE": "soon"}, "STOMPGATE_PRESENCE_GRACE: cannot use 'soon'"),
        ({"STOMPGATE_PRESENCE_GRACE": "0"}, "STOMPGATE_PRESENCE_GRACE must be positive"),
        ({"STOMPGATE_PRESENCE_FANOUT_MAX": "1.5"}, "STOMPGATE_PRESENCE_FANOUT_MAX: cannot use"),
        ({"STOMPGATE_PRESENCE_FANOUT_MAX": "-1"}, "FANOUT_MAX must not be negative"),
        ({"STOMPGATE_PRESENCE_LEASE": "1"}, "must be longer than STOMPGATE_PRESENCE_INTERVAL"),
        ({"STOMPGATE_PRESENCE_LEASE": "29.5"}, "must not exceed STOMPGATE_PRESENCE_GRACE"),
        ({"STOMPGATE_PRESENCE_ACTIVE_EVERY": "0"}, "ACTIVE_EVERY must be positive"),
    ],
)
def test_values_that_cannot_be_used(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PresenceSettings.from_env(environ)


def test_the_gateway_turns_them_into_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOMPGATE_PRESENCE_INTERVAL", "-1")
    with pytest.raises(ConfigurationError, match="STOMPGATE_PRESENCE_INTERVAL must be positive"):
        Gateway(Settings(auth="dev"))
