"""AuthSettings.from_env and Authenticator (modes, precedence, expiry)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.auth.acl import Acl
from gateway.auth.authenticator import Authenticator
from gateway.auth.errors import AuthError
from gateway.auth.identity import Identity
from gateway.auth.limits import AbuseLimits
from gateway.auth.settings import AuthMode, AuthSettings
from gateway.auth.tokens import TokenSources
from tests.auth.conftest import HS_SECRET, NOW, claims, sign

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "acl.toml")
JWT_ENV = {
    "STOMPGATE_JWT_ALGORITHMS": "HS256",
    "STOMPGATE_JWT_KEY": HS_SECRET,
    "STOMPGATE_JWT_AUDIENCE": "chat",
    "STOMPGATE_JWT_ISSUER": "https://issuer.example",
}


def jwt_authenticator(**env: str) -> Authenticator:
    return Authenticator(AuthSettings.from_env({**JWT_ENV, **env}))


def token(**overrides: object) -> str:
    return sign(claims(**overrides), HS_SECRET, "HS256")


def test_default_mode_is_jwt_and_needs_keys() -> None:
    settings = AuthSettings.from_env(JWT_ENV)
    assert settings.mode is AuthMode.JWT
    assert settings.jwt is not None
    assert settings.sources == TokenSources()
    assert settings.limits == AbuseLimits()
    with pytest.raises(ValueError, match="STOMPGATE_JWT_ALGORITHMS is required"):
        AuthSettings.from_env({})  # no silent fall-back to dev mode
    with pytest.raises(ValueError, match="jwt auth mode needs JWT settings"):
        AuthSettings()


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="STOMPGATE_AUTH must be 'jwt' or 'dev', got 'none'"):
        AuthSettings.from_env({"STOMPGATE_AUTH": "none"})


def test_dev_mode_only_when_chosen(caplog: pytest.LogCaptureFixture) -> None:
    settings = AuthSettings.from_env({"STOMPGATE_AUTH": "dev"})
    assert settings.jwt is None
    with caplog.at_level(logging.WARNING, logger="stompgate.auth"):
        auth = Authenticator(settings)
    assert "AUTH MODE DEV" in caplog.text
    assert "guest" in caplog.text
    identity = auth.authenticate("guest", "guest", [])
    assert identity == Identity(user="guest", dev=True)
    assert auth.deadline(identity) is None
    with pytest.raises(AuthError) as caught:
        auth.authenticate("guest", token(), [])
    assert caught.value.text == "Access refused for user 'guest'"
    assert auth.handshake_token({"authorization": f"Bearer {token()}"}, {}, {}) is None


def test_cli_mode_overrides_env() -> None:
    settings = AuthSettings.from_env(
        {"STOMPGATE_AUTH": "jwt", "STOMPGATE_DEV_USERS": "a:b"}, mode="dev"
    )
    assert settings.mode is AuthMode.DEV
    assert Authenticator(settings).authenticate("a", "b", []).user == "a"


def test_jwt_from_passcode_with_empty_login() -> None:
    auth = jwt_authenticator()
    assert auth.authenticate("", token(), [], now=NOW).user == "alice"


def test_jwt_from_connect_header() -> None:
    auth = jwt_authenticator()
    headers = [("accept-version", "1.2"), ("Authorization", f"Bearer {token(sub='bob')}")]
    assert auth.authenticate(None, None, headers, now=NOW).user == "bob"


def test_connect_token_beats_handshake_token() -> None:
    auth = jwt_authenticator()
    stale = token(sub="old", exp=int(NOW) - 3600)
    handshake = auth.handshake_token({}, {}, {"stompgate_token": stale})
    assert handshake == stale
    assert auth.authenticate("", token(), [], handshake_token=handshake, now=NOW).user == "alice"
    with pytest.raises(AuthError) as caught:
        auth.authenticate("", None, [], handshake_token=handshake, now=NOW)
    assert caught.value.text == "token expired"


def test_handshake_token_alone() -> None:
    auth = jwt_authenticator()
    handshake = auth.handshake_token({}, {"access_token": token()}, {})
    assert auth.authenticate(None, None, [], handshake_token=handshake, now=NOW).user == "alice"


def test_no_token_anywhere() -> None:
    with pytest.raises(AuthError) as caught:
        jwt_authenticator().authenticate("guest", None, [], now=NOW)
    assert caught.value.text == "missing token"


def test_dev_credentials_in_jwt_mode_are_refused() -> None:
    with pytest.raises(AuthError) as caught:
        jwt_authenticator().authenticate("guest", "guest", [], now=NOW)
    assert caught.value.text == "malformed token"


def test_disabled_source_is_ignored() -> None:
    auth = jwt_authenticator(STOMPGATE_TOKEN_FROM_PASSCODE="false")
    with pytest.raises(AuthError) as caught:
        auth.authenticate("", token(), [], now=NOW)
    assert caught.value.text == "missing token"


def test_token_expiring_mid_session() -> None:
    auth = jwt_authenticator(STOMPGATE_JWT_LEEWAY="30")
    identity = auth.authenticate("", token(exp=int(NOW) + 60), [], now=NOW)
    assert auth.deadline(identity) == NOW + 90
    assert auth.check_expiry(identity, now=NOW + 89) is None
    error = auth.check_expiry(identity, now=NOW + 90)
    assert error is not None
    assert error.text == "token expired"


def test_load_acl(tmp_path: Path) -> None:
    settings = AuthSettings.from_env({**JWT_ENV, "STOMPGATE_ACL_FILE": EXAMPLE})
    assert len(settings.load_acl().rules) == 7
    assert AuthSettings.from_env(JWT_ENV).load_acl().rules == Acl.default().rules
