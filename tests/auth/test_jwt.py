"""JwtAuthenticator and DevAuthenticator: every token case asserts the exact AuthError message."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth.errors import AuthError
from gateway.auth.identity import Identity
from gateway.auth.jwt_auth import (
    MAX_TOKEN_LENGTH,
    DevAuthenticator,
    JwtAuthenticator,
    JwtSettings,
)
from tests.auth.conftest import (
    HS_SECRET,
    NOW,
    KeyPair,
    b64,
    claims,
    hmac_token,
    raw_token,
    sign,
)

AUD = "chat"
ISS = "https://issuer.example"


def rs256(rsa_key: KeyPair, **overrides: Any) -> JwtAuthenticator:
    options: dict[str, Any] = {
        "algorithms": ("RS256",),
        "key": rsa_key.public_pem,
        "audience": AUD,
        "issuer": ISS,
    }
    options.update(overrides)
    return JwtAuthenticator(JwtSettings(**options))


def hs256(**overrides: Any) -> JwtAuthenticator:
    options: dict[str, Any] = {
        "algorithms": ("HS256",),
        "key": HS_SECRET,
        "audience": AUD,
        "issuer": ISS,
    }
    options.update(overrides)
    return JwtAuthenticator(JwtSettings(**options))


def expect(auth: JwtAuthenticator, token: str | None, message: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.verify(token, now=NOW)
    assert caught.value.text == message
    assert caught.value.detail
    return caught.value


# -- valid tokens ------------------------------------------------------------------------------


def test_valid_rs256(rsa_key: KeyPair) -> None:
    token = sign(claims(), rsa_key.private, "RS256")
    identity = rs256(rsa_key).verify(token, now=NOW)
    assert identity == Identity(
        user="alice",
        claims=claims(),
        expires_at=NOW + 600,
        roles=frozenset({"member"}),
        rooms=frozenset({"7"}),
    )
    assert identity.dev is False


def test_valid_hs256() -> None:
    identity = hs256().verify(sign(claims(), HS_SECRET, "HS256"), now=NOW)
    assert identity.user == "alice"


def test_valid_es256(ec_key: KeyPair) -> None:
    auth = JwtAuthenticator(
        JwtSettings(algorithms=("ES256",), key=ec_key.public_pem, audience=AUD, issuer=ISS)
    )
    assert auth.verify(sign(claims(), ec_key.private, "ES256"), now=NOW).user == "alice"


def test_valid_eddsa(ed_key: KeyPair) -> None:
    auth = JwtAuthenticator(
        JwtSettings(algorithms=("EdDSA",), key=ed_key.public_pem, audience=AUD, issuer=ISS)
    )
    assert auth.verify(sign(claims(), ed_key.private, "EdDSA"), now=NOW).user == "alice"


def test_valid_key_from_pem_file(rsa_key: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "public.pem"
    path.write_text(rsa_key.public_pem)
    auth = rs256(rsa_key, key=None, key_file=str(path))
    assert auth.verify(sign(claims(), rsa_key.private, "RS256"), now=NOW).user == "alice"


def test_hs_secret_from_file_ignores_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(HS_SECRET + "\n")
    auth = hs256(key=None, key_file=str(path))
    assert auth.verify(sign(claims(), HS_SECRET, "HS256"), now=NOW).user == "alice"


def test_bearer_whitespace_is_trimmed() -> None:
    assert hs256().verify("  " + sign(claims(), HS_SECRET, "HS256") + "\n", now=NOW)


def test_claims_are_read_only() -> None:
    identity = hs256().verify(sign(claims(), HS_SECRET, "HS256"), now=NOW)
    with pytest.raises(TypeError):
        identity.claims["sub"] = "mallory"  # type: ignore[index]
    assert hash(identity) == hash(identity)


def test_roles_and_rooms_from_configured_claims() -> None:
    payload = claims(
        roles=None,
        rooms=None,
        realm_access={"roles": ["admin", "service"]},
        scope="room:1 room:2",
    )
    auth = hs256(roles_claim="realm_access.roles", rooms_claim="scope")
    identity = auth.verify(sign(payload, HS_SECRET, "HS256"), now=NOW)
    assert identity.roles == {"admin", "service"}
    assert identity.rooms == {"room:1", "room:2"}


def test_integer_room_ids_become_strings() -> None:
    identity = hs256().verify(sign(claims(rooms=[7, 8, True]), HS_SECRET, "HS256"), now=NOW)
    assert identity.rooms == {"7", "8"}


# -- time claims -------------------------------------------------------------------------------


def test_expired(rsa_key: KeyPair) -> None:
    token = sign(claims(exp=int(NOW) - 31), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token expired")


def test_expired_within_leeway_is_accepted(rsa_key: KeyPair) -> None:
    token = sign(claims(exp=int(NOW) - 29), rsa_key.private, "RS256")
    assert rs256(rsa_key).verify(token, now=NOW).user == "alice"


def test_expired_with_zero_leeway(rsa_key: KeyPair) -> None:
    token = sign(claims(exp=int(NOW)), rsa_key.private, "RS256")
    expect(rs256(rsa_key, leeway=0), token, "token expired")


def test_not_yet_valid_nbf(rsa_key: KeyPair) -> None:
    token = sign(claims(nbf=int(NOW) + 31), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token not yet valid")


def test_not_yet_valid_iat_in_future(rsa_key: KeyPair) -> None:
    token = sign(claims(iat=int(NOW) + 3600), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token not yet valid")


def test_nbf_within_leeway_is_accepted(rsa_key: KeyPair) -> None:
    token = sign(claims(nbf=int(NOW) + 29), rsa_key.private, "RS256")
    assert rs256(rsa_key).verify(token, now=NOW).user == "alice"


def test_non_numeric_exp_is_malformed() -> None:
    expect(hs256(), sign(claims(exp="tomorrow"), HS_SECRET, "HS256"), "malformed token")


def test_missing_exp() -> None:
    expect(hs256(), sign(claims(exp=None), HS_SECRET, "HS256"), "token missing claim: exp")


def test_missing_sub_even_if_not_required() -> None:
    auth = hs256(require=("exp",))
    expect(auth, sign(claims(sub=None), HS_SECRET, "HS256"), "token missing claim: sub")


@pytest.mark.parametrize("sub", ["", "alice\nsender:bob", "x" * 256, 42, " alice"])
def test_invalid_subject(sub: Any) -> None:
    expect(hs256(), sign(claims(sub=sub), HS_SECRET, "HS256"), "token subject invalid")


# -- audience and issuer -----------------------------------------------------------------------


def test_wrong_audience(rsa_key: KeyPair) -> None:
    token = sign(claims(aud="billing"), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token audience mismatch")


def test_audience_list_containing_ours(rsa_key: KeyPair) -> None:
    token = sign(claims(aud=["billing", "chat"]), rsa_key.private, "RS256")
    assert rs256(rsa_key).verify(token, now=NOW).user == "alice"


def test_missing_audience(rsa_key: KeyPair) -> None:
    token = sign(claims(aud=None), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token audience mismatch")


def test_audience_in_token_but_none_configured(rsa_key: KeyPair) -> None:
    token = sign(claims(), rsa_key.private, "RS256")
    error = expect(rs256(rsa_key, audience=None), token, "token audience mismatch")
    assert "none is configured" in error.detail


def test_wrong_issuer(rsa_key: KeyPair) -> None:
    token = sign(claims(iss="https://evil.example"), rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token issuer mismatch")


def test_missing_issuer(rsa_key: KeyPair) -> None:
    expect(
        rs256(rsa_key), sign(claims(iss=None), rsa_key.private, "RS256"), "token issuer mismatch"
    )


# -- keys and algorithms -----------------------------------------------------------------------


def test_wrong_key(rsa_key: KeyPair, other_rsa_key: KeyPair) -> None:
    token = sign(claims(), other_rsa_key.private, "RS256")
    expect(rs256(rsa_key), token, "token signature invalid")


def test_wrong_hmac_secret() -> None:
    token = sign(claims(), "another-secret-another-secret-another-1", "HS256")
    expect(hs256(), token, "token signature invalid")


def test_tampered_payload(rsa_key: KeyPair) -> None:
    head, _body, signature = sign(claims(), rsa_key.private, "RS256").split(".")
    forged = b64(json.dumps(claims(sub="mallory")).encode())
    expect(rs256(rsa_key), f"{head}.{forged}.{signature}", "token signature invalid")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_refused(rsa_key: KeyPair, alg: str) -> None:
    token = raw_token({"alg": alg, "typ": "JWT"}, claims())
    expect(rs256(rsa_key), token, "token algorithm not allowed: none")


def test_alg_none_refused_even_for_hs() -> None:
    expect(hs256(), raw_token({"alg": "none"}, claims()), "token algorithm not allowed: none")


def test_alg_none_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="'none' can never be allowed"):
        JwtSettings(algorithms=("none",), key=HS_SECRET)


def test_hs_rs_key_confusion(rsa_key: KeyPair) -> None:
    """HS256 'signed' with the RSA public key PEM as the HMAC secret, against RS256."""
    token = hmac_token({"alg": "HS256", "typ": "JWT"}, claims(), rsa_key.public_pem.encode())
    expect(rs256(rsa_key), token, "token algorithm not allowed: HS256")


def test_hs_rs_key_confusion_with_both_families_pinned(rsa_key: KeyPair, tmp_path: Path) -> None:
    """Even with HS256 and RS256 both pinned, the RSA key never serves as an HMAC secret."""
    path = tmp_path / "public.pem"
    path.write_text(rsa_key.public_pem)
    auth = rs256(rsa_key, algorithms=("RS256", "HS256"), key=HS_SECRET, key_file=str(path))
    token = hmac_token({"alg": "HS256"}, claims(), rsa_key.public_pem.encode())
    expect(auth, token, "token signature invalid")
    assert auth.verify(sign(claims(), rsa_key.private, "RS256"), now=NOW).user == "alice"
    assert auth.verify(sign(claims(), HS_SECRET, "HS256"), now=NOW).user == "alice"


def test_hs_rs_confusion_through_jwks(rsa_key: KeyPair, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps(
            {
                "keys": [
                    dict(RSAAlgorithm.to_jwk(rsa_key.private.public_key(), as_dict=True), kid="k1")
                ]
            }
        )
    )
    auth = JwtAuthenticator(
        JwtSettings(algorithms=("RS256", "HS256"), jwks_file=str(jwks), audience=AUD, issuer=ISS)
    )
    token = hmac_token({"alg": "HS256", "kid": "k1"}, claims(), rsa_key.public_pem.encode())
    expect(auth, token, "token key not found")


def test_unpinned_algorithm(ec_key: KeyPair, rsa_key: KeyPair) -> None:
    token = sign(claims(), ec_key.private, "ES256")
    expect(rs256(rsa_key), token, "token algorithm not allowed: ES256")


def test_unpinned_algorithm_name_is_sanitised(rsa_key: KeyPair) -> None:
    token = raw_token({"alg": "RS256\nsender:bob" + "x" * 50}, claims())
    shown = "RS256?sender:bob" + "x" * 16 + "..."  # printable ASCII, 32 characters at most
    expect(rs256(rsa_key), token, f"token algorithm not allowed: {shown}")


def test_pem_key_is_never_an_hmac_secret(rsa_key: KeyPair) -> None:
    with pytest.raises(ValueError, match="HS256 is pinned but no key of its type"):
        JwtAuthenticator(JwtSettings(algorithms=("HS256",), key=rsa_key.public_pem))


def test_key_must_fit_pinned_algorithms(ec_key: KeyPair) -> None:
    with pytest.raises(ValueError, match="no key of its type"):
        JwtAuthenticator(JwtSettings(algorithms=("RS256",), key=ec_key.public_pem))


def test_secret_without_hs_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PEM key and no HS algorithm is pinned"):
        JwtAuthenticator(JwtSettings(algorithms=("RS256",), key=HS_SECRET))


def test_short_hmac_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="HMAC secret is 5 bytes; HS256 needs at least 32"):
        JwtAuthenticator(JwtSettings(algorithms=("HS256",), key="short"))


def test_private_key_pem_is_reduced_to_public(
    rsa_key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stompgate.auth"):
        auth = rs256(rsa_key, key=rsa_key.private_pem)
    assert "private key" in caplog.text
    assert auth.verify(sign(claims(), rsa_key.private, "RS256"), now=NOW).user == "alice"


def test_settings_need_algorithms_and_keys() -> None:
    with pytest.raises(ValueError, match="must be pinned"):
        JwtSettings(algorithms=(), key=HS_SECRET)
    with pytest.raises(ValueError, match="no JWT key configured"):
        JwtSettings(algorithms=("HS256",))
    with pytest.raises(ValueError, match="unsupported JWT algorithm 'HS1'"):
        JwtSettings(algorithms=("HS1",), key=HS_SECRET)


# -- malformed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c",
        "!!!.!!!.!!!",
        b64(b"not json") + "." + b64(b"{}") + ".",
        b64(b"[1, 2]") + "." + b64(b"{}") + ".",
        b64(b'{"typ": "JWT"}') + "." + b64(b"{}") + ".",
        b64(b'{"alg": 256}') + "." + b64(b"{}") + ".",
        b64(b'{"alg": "HS256", "kid": 5}') + "." + b64(b"{}") + ".",
        "x" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_malformed(token: str) -> None:
    expect(hs256(), token, "malformed token")


def test_payload_not_a_json_object() -> None:
    head = b64(b'{"alg": "HS256"}')
    for body in (b"[1]", b"nope"):
        signing = f"{head}.{b64(body)}"
        sig = hmac.new(HS_SECRET.encode(), signing.encode(), hashlib.sha256).digest()
        expect(hs256(), f"{signing}.{b64(sig)}", "malformed token")


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing(token: str | None) -> None:
    expect(hs256(), token, "missing token")


# -- JWKS --------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_jwks(path: Path, *keys: dict[str, Any], mtime: int | None = None) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": list(keys)}))
    os.replace(tmp, path)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def jwk(key: KeyPair, kid: str, **extra: Any) -> dict[str, Any]:
    public = key.private.public_key()
    data: dict[str, Any]
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**data, "kid": kid, **extra}


def jwks_auth(
    path: Path, clock: FakeClock, algorithms: tuple[str, ...] = ("RS256",)
) -> JwtAuthenticator:
    return JwtAuthenticator(
        JwtSettings(algorithms=algorithms, jwks_file=str(path), audience=AUD, issuer=ISS),
        monotonic=clock,
    )


def test_jwks_kid_selection(rsa_key: KeyPair, other_rsa_key: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwk(rsa_key, "one"), jwk(other_rsa_key, "two", alg="RS256", use="sig"))
    auth = jwks_auth(path, FakeClock())
    assert (
        auth.verify(sign(claims(sub="a"), rsa_key.private, "RS256", kid="one"), now=NOW).user == "a"
    )
    assert (
        auth.verify(sign(claims(sub="b"), other_rsa_key.private, "RS256", kid="two"), now=NOW).user
        == "b"
    )
    # right kid, wrong key
    expect(auth, sign(claims(), rsa_key.private, "RS256", kid="two"), "token signature invalid")
    expect(auth, sign(claims(), rsa_key.private, "RS256", kid="three"), "token key not found")
    # no kid: every key of the family is tried
    assert auth.verify(sign(claims(), other_rsa_key.private, "RS256"), now=NOW).user == "alice"


def test_jwks_mixed_families(
    rsa_key: KeyPair, ec_key: KeyPair, ed_key: KeyPair, tmp_path: Path
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwk(rsa_key, "r"), jwk(ec_key, "e"), jwk(ed_key, "d"))
    auth = jwks_auth(path, FakeClock(), ("RS256", "ES256", "EdDSA"))
    for key, alg, kid in ((rsa_key, "RS256", "r"), (ec_key, "ES256", "e"), (ed_key, "EdDSA", "d")):
        assert auth.verify(sign(claims(), key.private, alg, kid=kid), now=NOW).user == "alice"
    # the EC key's kid with an RS256 token: the EC key is not of the RSA family
    expect(auth, sign(claims(), rsa_key.private, "RS256", kid="e"), "token key not found")


def test_jwks_key_alg_binds(rsa_key: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwk(rsa_key, "r", alg="PS256"))
    auth = jwks_auth(path, FakeClock(), ("RS256", "PS256"))
    expect(auth, sign(claims(), rsa_key.private, "RS256", kid="r"), "token key not found")
    assert auth.verify(sign(claims(), rsa_key.private, "PS256", kid="r"), now=NOW).user == "alice"


def test_jwks_reload_on_change(rsa_key: KeyPair, other_rsa_key: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwk(rsa_key, "old"), mtime=1_000_000_000_000_000_000)
    clock = FakeClock()
    auth = jwks_auth(path, clock)
    new_token = sign(claims(), other_rsa_key.private, "RS256", kid="new")
    old_token = sign(claims(), rsa_key.private, "RS256", kid="old")
    assert auth.verify(old_token, now=NOW).user == "alice"

    write_jwks(path, jwk(other_rsa_key, "new"), mtime=1_000_000_002_000_000_000)
    clock.now += 0.5  # checked at most once per second: not yet seen
    expect(auth, new_token, "token key not found")
    clock.now += 1.0
    assert auth.verify(new_token, now=NOW).user == "alice"
    expect(auth, old_token, "token key not found")


def test_jwks_broken_file_keeps_previous_keys(
    rsa_key: KeyPair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwk(rsa_key, "k"), mtime=1_000_000_000_000_000_000)
    clock = FakeClock()
    auth = jwks_auth(path, clock)
    path.write_text("{ half written")
    os.utime(path, ns=(1_000_000_005_000_000_000,) * 2)
    clock.now += 2
    with caplog.at_level(logging.ERROR, logger="stompgate.auth"):
        identity = auth.verify(sign(claims(), rsa_key.private, "RS256", kid="k"), now=NOW)
    assert identity.user == "alice"
    assert "keeping the previous keys" in caplog.text


def test_jwks_unusable_keys_skipped(rsa_key: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, {"kty": "nope"}, jwk(rsa_key, "enc", use="enc"), jwk(rsa_key, "k"))
    auth = jwks_auth(path, FakeClock())
    expect(auth, sign(claims(), rsa_key.private, "RS256", kid="enc"), "token key not found")
    assert auth.verify(sign(claims(), rsa_key.private, "RS256", kid="k"), now=NOW)


def test_jwks_file_must_load_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load JWKS file"):
        jwks_auth(tmp_path / "missing.json", FakeClock())
    (tmp_path / "bad.json").write_text('{"no": "keys"}')
    with pytest.raises(ValueError, match="not a JWKS"):
        jwks_auth(tmp_path / "bad.json", FakeClock())


# -- deadline, env, dev ------------------------------------------------------------------------


def test_deadline_includes_leeway() -> None:
    auth = hs256(leeway=5)
    identity = auth.verify(sign(claims(), HS_SECRET, "HS256"), now=NOW)
    assert auth.deadline(identity) == NOW + 600 + 5
    assert auth.deadline(Identity(user="x")) is None


def test_settings_from_env(tmp_path: Path) -> None:
    settings = JwtSettings.from_env(
        {
            "X_JWT_ALGORITHMS": "RS256, ES256",
            "X_JWKS_FILE": "/etc/jwks.json",
            "X_JWT_AUDIENCE": "chat",
            "X_JWT_ISSUER": "https://issuer",
            "X_JWT_LEEWAY": "5",
            "X_JWT_REQUIRE": "exp,sub,iat",
            "X_JWT_ROLES_CLAIM": "realm_access.roles",
        },
        prefix="X_",
    )
    assert settings == JwtSettings(
        algorithms=("RS256", "ES256"),
        jwks_file="/etc/jwks.json",
        audience="chat",
        issuer="https://issuer",
        leeway=5.0,
        require=("exp", "sub", "iat"),
        roles_claim="realm_access.roles",
    )
    with pytest.raises(ValueError, match="STOMPGATE_JWT_ALGORITHMS is required"):
        JwtSettings.from_env({"STOMPGATE_JWT_KEY": HS_SECRET})
    with pytest.raises(ValueError, match="STOMPGATE_JWT_LEEWAY must be a number"):
        JwtSettings.from_env(
            {
                "STOMPGATE_JWT_ALGORITHMS": "HS256",
                "STOMPGATE_JWT_KEY": HS_SECRET,
                "STOMPGATE_JWT_LEEWAY": "soon",
            }
        )


def test_dev_authenticator() -> None:
    dev = DevAuthenticator.from_string("guest:guest, bob:pa:ss")
    assert dev.verify_login("guest", "guest") == Identity(user="guest", dev=True)
    assert dev.verify_login("bob", "pa:ss").dev is True
    for login, passcode in (
        ("guest", "nope"),
        ("nobody", "guest"),
        (None, None),
        ("", ""),
        ("guest", None),
    ):
        with pytest.raises(AuthError) as caught:
            dev.verify_login(login, passcode)
        assert caught.value.message == "Bad CONNECT"
        assert caught.value.text == f"Access refused for user '{login or ''}'"


def test_dev_authenticator_config_errors() -> None:
    with pytest.raises(ValueError, match="at least one user"):
        DevAuthenticator.from_string(" , ")
    with pytest.raises(ValueError, match="must be 'login:passcode'"):
        DevAuthenticator.from_string("guest")


def test_pyjwt_itself_agrees_on_valid_token(rsa_key: KeyPair) -> None:
    """Cross-check: our claim checks accept what pyjwt's own decode accepts."""
    token = sign(claims(exp=None), rsa_key.private, "RS256")
    decoded = jwt.decode(
        token,
        rsa_key.public_pem,
        algorithms=["RS256"],
        audience=AUD,
        issuer=ISS,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert rs256(rsa_key, require=("sub",)).verify(token, now=NOW).claims == decoded


def test_short_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- on purpose
    pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="RSA key is 1024 bits; at least 2048 required"):
        JwtAuthenticator(JwtSettings(algorithms=("RS256",), key=pem.decode()))
