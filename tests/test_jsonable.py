"""The JSON shape of records shared by every verb's ``--json``, and the schemas shipped."""

from __future__ import annotations

import dataclasses
import enum
import json
from importlib import resources
from typing import NamedTuple

import pytest

from lkm.jsonable import SCHEMAS, document, dumps, schema_file, to_jsonable


class Colour(enum.Enum):
    RED = "red"


class Inner(NamedTuple):
    name: str
    size: int | None


@dataclasses.dataclass
class Outer:
    inner: tuple[Inner, ...]
    colour: Colour
    raw: bytes
    tags: frozenset[str]


def test_records_become_objects_in_field_order() -> None:
    value = Outer((Inner("a", 1), Inner("b", None)), Colour.RED, b"\x01\xab", frozenset("ba"))
    assert json.dumps(to_jsonable(value)) == json.dumps(
        {
            "inner": [{"name": "a", "size": 1}, {"name": "b", "size": None}],
            "colour": "red",
            "raw": "01ab",
            "tags": ["a", "b"],
        }
    )


def test_undecodable_module_text_becomes_replacement_characters() -> None:
    text = b"caf\xe9 ok".decode("utf-8", "surrogateescape")
    assert to_jsonable(text) == "caf\ufffd ok"
    assert to_jsonable("\u00e9") == "\u00e9"


def test_a_record_may_choose_its_shape() -> None:
    class Custom:
        def to_json(self) -> object:
            return ["custom"]

    assert to_jsonable({"k": Custom()}) == {"k": ["custom"]}


def test_unknown_values_are_refused() -> None:
    with pytest.raises(TypeError, match="no JSON shape for object"):
        to_jsonable(object())


def test_document_names_schema_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCHEMAS, "example", 3)
    assert document("example", [Inner("x", 2)]) == {
        "schema": "lkm/example/3",
        "records": [{"name": "x", "size": 2}],
    }
    assert dumps("example", []).endswith("]\n}\n")


def test_every_schema_is_shipped_valid_and_used() -> None:
    """Each verb's schema is in the package, is itself a valid JSON Schema, and says which
    document it describes; no schema file is left over from a verb that is gone."""
    import jsonschema

    folder = resources.files("lkm") / "schemas"
    files = folder.iterdir() if folder.is_dir() else iter(())
    shipped = sorted(p.name for p in files if p.name.endswith(".json"))
    assert shipped == sorted(schema_file(verb) for verb in SCHEMAS)
    for verb in SCHEMAS:
        schema = json.loads((folder / schema_file(verb)).read_text("utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)
        assert schema["properties"]["schema"] == {"const": f"lkm/{verb}/{SCHEMAS[verb]}"}
