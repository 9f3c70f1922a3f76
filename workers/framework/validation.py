"""Validators: turn a body into a payload, or raise (the message is then poison, dead-lettered).

`schema_validator(name)` delegates to `schemas.validate(name, body)` (the project's JSON
Schemas and msgspec Structs). Any callable `(bytes) -> T` works as a validator too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SchemaValidate = Callable[[str, bytes], Any]


class SchemaUnavailableError(RuntimeError):
    """`schemas.validate` does not exist (yet) in this installation."""


def find_schema_validate() -> SchemaValidate | None:
    """`schemas.validate` if the schemas package provides it, else None."""
    try:
        module = importlib.import_module("schemas")
    except ImportError:
        return None
    validate = getattr(module, "validate", None)
    return validate if callable(validate) else None


def schema_validator(name: str) -> Callable[[bytes], Any]:
    """A validator for the event schema `name` (e.g. "chat.message.v1")."""
    validate = find_schema_validate()
    if validate is None:
        raise SchemaUnavailableError(
            f"consumer asks for schema {name!r} but schemas.validate is not available; "
            "pass validator=<callable (bytes) -> payload> instead"
        )

    def validator(body: bytes) -> Any:
        return validate(name, body)

    validator.__qualname__ = f"schema_validator({name!r})"
    return validator
