"""Where the token is found: handshake header/query/cookie, CONNECT header/passcode."""

from __future__ import annotations

import pytest

from gateway.auth.tokens import (
    TokenSources,
    bearer_token,
    token_from_connect,
    token_from_handshake,
)

ALL = TokenSources()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic Z3Vlc3Q6Z3Vlc3Q=", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(value: str | None, expected: str | None) -> None:
    assert bearer_token(value) == expected


def test_handshake_precedence_header_query_cookie() -> None:
    headers = {"authorization": "Bearer from-header"}
    query = {"access_token": "from-query"}
    cookies = {"stompgate_token": "from-cookie"}
    assert token_from_handshake(headers, query, cookies, ALL) == "from-header"
    assert token_from_handshake({}, query, cookies, ALL) == "from-query"
    assert token_from_handshake({}, {}, cookies, ALL) == "from-cookie"
    assert token_from_handshake({}, {}, {}, ALL) is None


def test_handshake_header_name_is_case_insensitive() -> None:
    assert token_from_handshake({"AUTHORIZATION": "Bearer t"}, {}, {}, ALL) == "t"
    assert token_from_handshake([("Authorization", "Bearer t")], {}, {}, ALL) == "t"


def test_handshake_sources_switch_off() -> None:
    headers = {"Authorization": "Bearer h"}
    query = {"access_token": "q"}
    cookies = {"stompgate_token": "c", "other": "o"}
    off = TokenSources(ws_header=False, ws_query=False, ws_cookie=None)
    assert token_from_handshake(headers, query, cookies, off) is None
    assert token_from_handshake(headers, query, cookies, TokenSources(ws_header=False)) == "q"
    only_cookie = TokenSources(ws_header=False, ws_query=False, ws_cookie="other")
    assert token_from_handshake(headers, query, cookies, only_cookie) == "o"


def test_connect_header_then_passcode() -> None:
    headers = [("accept-version", "1.2"), ("Authorization", "Bearer hdr")]
    assert token_from_connect("", "pass-token", headers, ALL) == "hdr"
    assert token_from_connect("", "pass-token", [], ALL) == "pass-token"
    assert token_from_connect(None, "Bearer pass-token", [], ALL) == "pass-token"
    assert token_from_connect("alice", None, [], ALL) is None
    assert token_from_connect("alice", "  ", [], ALL) is None


def test_connect_first_authorization_header_wins() -> None:
    headers = [("authorization", "Bearer first"), ("authorization", "Bearer second")]
    assert token_from_connect(None, None, headers, ALL) == "first"
    assert token_from_connect(None, None, {"Authorization": "Bearer m"}, ALL) == "m"


def test_connect_sources_switch_off() -> None:
    headers = [("authorization", "Bearer hdr")]
    assert token_from_connect("", "p", headers, TokenSources(connect_header=False)) == "p"
    assert token_from_connect("", "p", [], TokenSources(connect_passcode=False)) is None


def test_sources_from_env() -> None:
    assert TokenSources.from_env({}) == TokenSources()
    env = {
        "STOMPGATE_TOKEN_FROM_PASSCODE": "false",
        "STOMPGATE_TOKEN_FROM_CONNECT_HEADER": "0",
        "STOMPGATE_TOKEN_FROM_WS_HEADER": "no",
        "STOMPGATE_TOKEN_FROM_WS_QUERY": "off",
        "STOMPGATE_TOKEN_COOKIE": "off",
    }
    assert TokenSources.from_env(env) == TokenSources(False, False, False, False, None)
    assert TokenSources.from_env({"STOMPGATE_TOKEN_COOKIE": "jwt"}).ws_cookie == "jwt"
    with pytest.raises(ValueError, match="STOMPGATE_TOKEN_FROM_WS_QUERY must be a boolean"):
        TokenSources.from_env({"STOMPGATE_TOKEN_FROM_WS_QUERY": "maybe"})
