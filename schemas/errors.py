"""`SchemaError` and the translation of msgspec's error text into readable messages.

msgspec says ``Expected `str` of length <= 4000 - at `$.text```; clients should read
``invalid chat.post: `text` must have length <= 4000``. The rewrite is a handful of regular
expressions over msgspec's (stable, documented) wording, with a verbatim fallback.
"""

from __future__ import annotations

import ast
import re

from schemas.models import PATTERN_WORDS

_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")
_WRONG_TYPE = re.compile(r"^Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`$")
_CONSTRAINT = re.compile(r"^Expected `(?P<expected>[^`]*)` (?P<rule>.+)$", re.S)
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$", re.S)
_REGEX = re.compile(r"^matching regex (?P<pattern>'.*'|\".*\")$", re.S)
_COUNT = re.compile(r"^of length (?P<rest>.+)$", re.S)

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
}


class SchemaError(ValueError):
    """A body did not match its schema.

    ``str(err)`` is the whole readable message; ``field`` is the dotted path of the offending
    field (``None`` for the body as a whole) and ``rule`` the broken rule in words.
    """

    def __init__(self, schema: str, field: str | None, rule: str) -> None:
        self.schema = schema
        self.field = field
        self.rule = rule
        super().__init__(f"invalid {short_name(schema)}: {rule}")


def short_name(schema: str) -> str:
    """``chat.post.v1`` -> ``chat.post`` (the version adds nothing for a reader)."""
    head, dot, tail = schema.rpartition(".")
    return head if dot and re.fullmatch(r"v[0-9]+", tail) else schema


def _field(path: str | None) -> str | None:
    """``$.meta.color`` -> ``meta.color``; ``$`` or nothing -> None."""
    if not path or path == "$":
        return None
    return path.removeprefix("$.").removeprefix("$")


def _join(parent: str | None, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _describe_type(name: str) -> str:
    if " | " in name:
        return "one of " + ", ".join(_TYPE_NAMES.get(part, part) for part in name.split(" | "))
    return _TYPE_NAMES.get(name, f"`{name}`")


def _rule_words(expected: str, rule: str) -> str:
    """``of length <= 4000`` -> ``have length <= 4000``; ``>= 0`` -> ``be >= 0``."""
    if m := _REGEX.match(rule):
        pattern = ast.literal_eval(m["pattern"])
        return PATTERN_WORDS.get(pattern, f"match the pattern {m['pattern']}")
    if m := _COUNT.match(rule):
        if expected in ("object", "array"):
            words = m["rest"].replace("<=", "at most").replace(">=", "at least")
            return f"have {words} entries"
        return f"have length {m['rest']}"
    return "be " + rule


def from_validation_error(schema: str, text: str) -> SchemaError:
    """Build a `SchemaError` from the text of a `msgspec.ValidationError`."""
    at = _AT.match(text)
    assert at is not None  # the pattern matches any string
    what, path, outer = at["what"], at["path"], at["outer"]
    location = _field(outer if path == "key" else path)
    if path == "key":
        subject: str | None = f"a key of `{location}`"
    elif location and location.endswith("[...]"):
        location = location.removesuffix("[...]")
        subject = f"a value of `{location}`"
    else:
        subject = f"`{location}`" if location else None

    if m := _MISSING.match(what):
        field = _join(location, m["field"])
        return SchemaError(schema, field, f"missing required field `{field}`")
    if m := _UNKNOWN.match(what):
        field = _join(location, m["field"])
        return SchemaError(schema, field, f"unknown field `{field}`")
    if m := _WRONG_TYPE.match(what):
        expected, got = _describe_type(m["expected"]), _describe_type(m["got"])
        if subject is None:
            return SchemaError(schema, None, f"body must be {expected}, got {got}")
        return SchemaError(schema, location, f"{subject} must be {expected}, got {got}")
    if m := _CONSTRAINT.match(what):
        rule = _rule_words(m["expected"], m["rule"])
        return SchemaError(schema, location, f"{subject or 'body'} must {rule}")
    if m := _ENUM.match(what):
        return SchemaError(
            schema, location, f"{subject or 'body'} has an invalid value {m['value']}"
        )
    suffix = f" at {subject}" if subject else ""
    return SchemaError(schema, location, f"{what}{suffix}")


def from_decode_error(schema: str, text: str) -> SchemaError:
    """Build a `SchemaError` for a body that is not JSON at all."""
    return SchemaError(schema, None, f"body is not valid JSON ({text})")
