"""Anonymous CONNECT (no ``login``, no token): settings and the authenticator."""

from __future__ import annotations

import logging

import pytest

from gateway.auth.authenticator import Authenticator
from gateway.auth.errors import AuthError
from gateway.auth.identity import Identity
from gateway.auth.settings import AuthMode, AuthSettings
from tests.auth.conftest import HS_SECRET, NOW, claims, sign

JWT_ENV = {
    "STOMPGATE_JWT_ALGORITHMS": "HS256",
    "STOMPGATE_JWT_KEY": HS_SECRET,
    "STOMPGATE_JWT_AUDIENCE": "chat",
    "STOMPGATE_JWT_ISSUER": "https://issuer.example",
}


def test_dev_mode_makes_anonymous_clients_guest_like_rabbitmqs_default_user() -> None:
    settings = AuthSettings.from_env({}, mode="dev")
    assert settings.anonymous_user == "guest"
    auth = Authenticator(settings)
    assert auth.authenticate(None, None, [], anonymous=True) == Identity(user="guest", dev=True)
    assert auth.authenticate(None, "ignored", [], anonymous=True) == Identity(
        user="guest", dev=True
    )
    with pytest.raises(AuthError):  # a login is checked as ever
        auth.authenticate("guest", "wrong", [], anonymous=True)


def test_dev_mode_can_refuse_anonymous_clients() -> None:
    settings = AuthSettings.from_env({"STOMPGATE_ANONYMOUS_USER": "off"}, mode="dev")
    assert settings.anonymous_user is None
    with pytest.raises(AuthError) as caught:
        Authenticator(settings).authenticate(None, None, [], anonymous=True)
    assert caught.value.text == "Access refused for user ''"


def test_production_refuses_anonymous_clients_by_default() -> None:
    settings = AuthSettings.from_env(JWT_ENV)
    assert (settings.mode, settings.anonymous_user) == (AuthMode.JWT, None)
    with pytest.raises(AuthError) as caught:
        Authenticator(settings).authenticate(None, None, [], anonymous=True)
    assert (caught.value.message, caught.value.text) == ("Bad CONNECT", "missing token")


def test_an_operator_names_the_anonymous_identity_and_its_roles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {**JWT_ENV, "STOMPGATE_ANONYMOUS_USER": "visitor", "STOMPGATE_ANONYMOUS_ROLES": "a,b"}
    with caplog.at_level(logging.WARNING, logger="stompgate.auth"):
        auth = Authenticator(AuthSettings.from_env(env))
    assert "anonymous CONNECT allowed" in caplog.text
    identity = auth.authenticate(None, None, [], anonymous=True)
    assert identity == Identity(user="visitor", roles=frozenset({"a", "b"}))
    assert auth.deadline(identity) is None
    # Not anonymous: a login (even empty, as token clients send) or any token.
    with pytest.raises(AuthError, match="missing token"):
        auth.authenticate("", None, [], anonymous=True)
    with pytest.raises(AuthError, match="missing token"):
        auth.authenticate("visitor", None, [], anonymous=True)
    token = sign(claims(sub="alice"), HS_SECRET, "HS256")
    assert auth.authenticate(None, None, [], handshake_token=token, now=NOW).user == "alice"
    assert auth.authenticate(None, token, [], now=NOW, anonymous=True).user == "alice"


def test_only_a_stomp_connect_is_anonymous() -> None:
    """Other requests (the history API) must bring credentials, whatever the settings."""
    auth = Authenticator(AuthSettings.from_env({}, mode="dev"))
    with pytest.raises(AuthError):
        auth.authenticate(None, None, [])


@pytest.mark.parametrize("name", ["a\x01b", "a\nb", "x" * 300])
def test_an_unusable_anonymous_name_is_a_configuration_error(name: str) -> None:
    with pytest.raises(ValueError, match="STOMPGATE_ANONYMOUS_USER"):
        AuthSettings.from_env({**JWT_ENV, "STOMPGATE_ANONYMOUS_USER": name})
