"""Schema registry: name -> Struct, name -> JSON Schema, and `validate`."""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any, TypeVar, cast

import msgspec

from schemas.errors import SchemaError, from_decode_error, from_validation_error
from schemas.models import MODELS

T = TypeVar("T", bound=msgspec.Struct)

_NAMES: dict[type[msgspec.Struct], str] = {model: name for name, model in MODELS.items()}


def names() -> tuple[str, ...]:
    """Every registered schema name, e.g. ``chat.post.v1``."""
    return tuple(MODELS)


def model(name: str) -> type[msgspec.Struct]:
    """The msgspec Struct for schema ``name``; `KeyError` if there is none."""
    return MODELS[name]


def name_of(struct_type: type[msgspec.Struct]) -> str:
    """The schema name of a registered Struct type."""
    return _NAMES[struct_type]


@functools.cache
def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema document for ``name`` (read once from ``schemas/<name>.json``)."""
    if name not in MODELS:
        raise KeyError(name)
    text = importlib.resources.files("schemas").joinpath(f"{name}.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@functools.cache
def _decoder(struct_type: type[T]) -> msgspec.json.Decoder[T]:
    return msgspec.json.Decoder(struct_type)


def decode(struct_type: type[T], body: bytes) -> T:
    """Decode and validate ``body`` as ``struct_type``; raise `SchemaError` naming the rule."""
    name = _NAMES[struct_type]
    try:
        return cast(T, _decoder(struct_type).decode(body))
    except msgspec.ValidationError as exc:
        raise from_validation_error(name, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise from_decode_error(name, str(exc)) from None


def validate(name: str, body: bytes) -> msgspec.Struct:
    """Decode and validate ``body`` against schema ``name``.

    Raises `SchemaError` (``invalid chat.post: `text` must have length <= 4000``), or
    `KeyError` for an unknown schema name.
    """
    return decode(MODELS[name], body)


__all__ = ["SchemaError", "decode", "json_schema", "model", "name_of", "names", "validate"]
