"""The msgspec Structs and the JSON Schema files describe the same documents."""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from tests.schemas.strategies import instances


def _struct_schema(name: str) -> dict[str, Any]:
    document = msgspec.json.schema(schemas.model(name))
    ref = document["$ref"].rsplit("/", 1)[1]
    struct_schema: dict[str, Any] = document["$defs"][ref]
    return struct_schema


@pytest.mark.parametrize("name", schemas.names())
def test_fields_and_required_match(name: str) -> None:
    ours, theirs = schemas.json_schema(name), _struct_schema(name)
    assert list(ours["properties"]) == list(theirs["properties"])
    assert sorted(ours["required"]) == sorted(theirs.get("required", []))
    assert ours["additionalProperties"] is False
    assert theirs["additionalProperties"] is False


@pytest.mark.parametrize("name", schemas.names())
def test_field_types_and_constraints_match(name: str) -> None:
    """Compare the type keyword and every constraint keyword of each top-level field."""
    keywords = ("type", "pattern", "minLength", "maxLength", "minimum", "maximum", "maxProperties")
    ours, theirs = schemas.json_schema(name), _struct_schema(name)
    for field, spec in ours["properties"].items():
        other = theirs["properties"][field]
        if "const" in spec:
            assert other == {"enum": [spec["const"]]}, field
            continue
        assert sorted(spec.get("enum", [])) == sorted(other.get("enum", [])), field
        if "propertyNames" in spec:
            assert spec["propertyNames"] == other["propertyNames"], field
        for keyword in keywords:
            assert spec.get(keyword) == other.get(keyword), (field, keyword)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("name", schemas.names())
def test_struct_instances_validate_against_json_schema(name: str, data: st.DataObject) -> None:
    struct = data.draw(instances(schemas.model(name)))
    body = msgspec.json.encode(struct)
    jsonschema.Draft202012Validator(schemas.json_schema(name)).validate(msgspec.json.decode(body))
    assert schemas.validate(name, body) == struct
