"""The WebSocket Origin allow-list."""

from __future__ import annotations

import pytest

from gateway.auth.limits import Breach
from gateway.auth.origin import origin_allowed, origin_rejection

# -- Origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        # same host is always allowed
        ("https://chat.example.com", "chat.example.com", (), True),
        ("https://CHAT.example.com", "chat.example.com", (), True),
        ("http://localhost:8080", "localhost:8080", (), True),
        ("http://localhost:3000", "localhost:8080", (), False),
        ("https://chat.example.com", "chat.example.com:443", (), True),
        # foreign origins
        ("https://evil.example", "chat.example.com", (), False),
        ("https://chat.example.com.evil.example", "chat.example.com", (), False),
        ("https://evil.example", None, (), False),
        # the allow-list
        ("https://app.example.com", "gw.example.com", ("https://app.example.com",), True),
        ("http://app.example.com", "gw.example.com", ("https://app.example.com",), False),
        ("https://app.example.com:8443", "gw", ("https://app.example.com",), False),
        ("https://app.example.com:8443", "gw", ("https://app.example.com:8443",), True),
        ("https://a.example.com", "gw", ("https://*.example.com",), True),
        ("https://a.b.example.com", "gw", ("https://*.example.com",), True),
        ("https://example.com", "gw", ("https://*.example.com",), False),
        ("https://badexample.com", "gw", ("https://*.example.com",), False),
        ("http://app.example.com:81", "gw", ("app.example.com",), True),
        ("https://x.example.com", "gw", ("*.example.com",), True),
        ("https://anything.test", "gw", ("*",), True),
        # null and junk
        ("null", "gw", (), False),
        ("null", "gw", ("null",), True),
        ("file://", "gw", (), False),
        ("https://chat.example.com:99999", "chat.example.com", (), False),
        ("javascript:alert(1)", "gw", (), False),
        ("https://chat.example.com/path", "chat.example.com", (), False),
    ],
)
def test_origin_allowed(
    origin: str, host: str | None, allowed: tuple[str, ...], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_missing_origin() -> None:
    assert origin_allowed(None, "gw", ()) is True
    assert origin_allowed("", "gw", ()) is True
    assert origin_allowed(None, "gw", (), allow_missing=False) is False


def test_foreign_origin_message() -> None:
    assert origin_rejection("https://evil.example") == Breach(
        "origin", "origin not allowed: https://evil.example"
    )
    assert origin_rejection("https://e\r\nx").message == "origin not allowed: https://e??x"
