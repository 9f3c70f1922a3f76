"""Every example agrees with both the JSON Schema file and the msgspec Struct."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import schemas

EXAMPLES = Path(schemas.__file__).parent / "examples"


def _examples(kind: str) -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name in schemas.names()
        for path in sorted((EXAMPLES / name / kind).glob("*.json"))
    ]


def _validator(name: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(
        schemas.json_schema(name), format_checker=jsonschema.FormatChecker()
    )


def _id(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].stem}"


def test_every_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    for name in schemas.names():
        document: dict[str, Any] = schemas.json_schema(name)
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"] == f"urn:stompgate:schema:{name}"


def test_registry_and_files_name_the_same_schemas() -> None:
    files = {p.name.removesuffix(".json") for p in EXAMPLES.parent.glob("*.json")}
    assert files == set(schemas.names())
    assert {p.name for p in EXAMPLES.iterdir()} == set(schemas.names())


@pytest.mark.parametrize("name", schemas.names())
def test_every_schema_has_valid_and_invalid_examples(name: str) -> None:
    assert list((EXAMPLES / name / "valid").glob("*.json"))
    assert list((EXAMPLES / name / "invalid").glob("*.json"))


@pytest.mark.parametrize("case", _examples("valid"), ids=_id)
def test_valid_example_passes_both(case: tuple[str, Path]) -> None:
    name, path = case
    body = path.read_bytes()
    _validator(name).validate(json.loads(body))
    struct = schemas.validate(name, body)
    assert isinstance(struct, schemas.model(name))


@pytest.mark.parametrize("case", _examples("invalid"), ids=_id)
def test_invalid_example_fails_both(case: tuple[str, Path]) -> None:
    name, path = case
    body = path.read_bytes()
    assert not _validator(name).is_valid(json.loads(body))
    with pytest.raises(schemas.SchemaError) as info:
        schemas.validate(name, body)
    assert str(info.value).startswith(f"invalid {name.rsplit('.', 1)[0]}: ")
