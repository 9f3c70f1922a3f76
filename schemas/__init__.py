"""Versioned JSON Schemas (draft 2020-12) for every event, with msgspec Structs to match.

- ``schemas/<name>.json``: the published contract, e.g. ``chat.post.v1.json``.
- ``schemas/examples/<name>/{valid,invalid}/*.json``: examples, checked against both sides.
- `schemas.models`: a ``msgspec.Struct`` per schema for fast validation.
- `validate` / `decode`: bytes -> Struct, raising `SchemaError` with a readable message.
"""

from schemas.errors import SchemaError
from schemas.models import MODELS
from schemas.registry import decode, json_schema, model, name_of, names, validate

__all__ = [
    "MODELS",
    "SchemaError",
    "decode",
    "json_schema",
    "model",
    "name_of",
    "names",
    "validate",
]
