"""SchemaError messages name the field and the rule."""

from __future__ import annotations

import pytest

import schemas
from schemas.errors import from_validation_error, short_name


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            b'{"client_id":"a","text":"' + b"x" * 4001 + b'"}',
            "text",
            "invalid chat.post: `text` must have length <= 4000",
        ),
        (b'{"text":"hi"}', "client_id", "invalid chat.post: missing required field `client_id`"),
        (
            b'{"client_id":"a","text":"hi","sender":"eve"}',
            "sender",
            "invalid chat.post: unknown field `sender`",
        ),
        (
            b'{"client_id":7,"text":"hi"}',
            "client_id",
            "invalid chat.post: `client_id` must be a string, got an integer",
        ),
        (b'{"client_id":"a","text":""}', "text", "invalid chat.post: `text` must have length >= 1"),
        (
            b'{"client_id":"a","text":"hi","reply_to":"x1"}',
            "reply_to",
            "invalid chat.post: `reply_to` must be a message id "
            "(a decimal string of up to 19 digits)",
        ),
        (
            b'{"client_id":"a","text":"hi","meta":{"k":{"nested":1}}}',
            "meta",
            "invalid chat.post: a value of `meta` must be one of a string, an integer, "
            "a boolean, null, got an object",
        ),
        (b"[1]", None, "invalid chat.post: body must be an object, got an array"),
        (b"{", None, "invalid chat.post: body is not valid JSON (Input data was truncated)"),
    ],
)
def test_post_errors(body: bytes, field: str | None, message: str) -> None:
    with pytest.raises(schemas.SchemaError) as info:
        schemas.validate("chat.post.v1", body)
    assert info.value.field == field
    assert info.value.schema == "chat.post.v1"
    assert str(info.value) == message or _same_words(str(info.value), message)


def _same_words(a: str, b: str) -> bool:
    """Union member order in msgspec's text is not part of the contract."""
    return sorted(a.replace(",", "").split()) == sorted(b.replace(",", "").split())


def test_nested_missing_field_is_dotted() -> None:
    err = from_validation_error("x.v1", "Object missing required field `b` - at `$.a`")
    assert str(err) == "invalid x: missing required field `a.b`"
    assert err.field == "a.b"


def test_range_and_enum_rules() -> None:
    body = b'{"v":1,"type":"presence","user":"u","status":"busy","at":1}'
    with pytest.raises(schemas.SchemaError, match=r"`status` has an invalid value 'busy'"):
        schemas.validate("chat.presence.v1", body)
    body = b'{"v":1,"type":"presence","user":"u","status":"away","at":-5}'
    with pytest.raises(schemas.SchemaError, match=r"`at` must be >= 0"):
        schemas.validate("chat.presence.v1", body)


def test_unrecognised_text_is_kept() -> None:
    err = from_validation_error("x.v1", "Something new - at `$.f`")
    assert str(err) == "invalid x: Something new at `f`"


def test_short_name() -> None:
    assert short_name("chat.post.v1") == "chat.post"
    assert short_name("weird") == "weird"


def test_unknown_schema_name() -> None:
    with pytest.raises(KeyError):
        schemas.validate("chat.nope.v1", b"{}")


def test_decode_is_typed() -> None:
    post = schemas.decode(schemas.models.ChatPost, b'{"client_id":"a","text":"hi"}')
    assert post.text == "hi"
