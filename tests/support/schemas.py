"""Checking a verb's ``--json`` output against the schema shipped with lkm."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from lkm.jsonable import SCHEMAS, schema_file, schema_id


def load_schema(verb: str) -> dict[str, Any]:
    """The JSON Schema of ``verb``'s documents, as the installed package ships it."""
    text = (resources.files("lkm") / "schemas" / schema_file(verb)).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate(verb: str, document: object) -> None:
    """Fail (jsonschema's ValidationError, naming the place) unless ``document`` is a valid
    ``verb`` document: the right ``schema`` and records the schema accepts."""
    import jsonschema

    assert verb in SCHEMAS, f"{verb} has no schema"
    assert isinstance(document, dict) and document.get("schema") == schema_id(verb), document
    schema = load_schema(verb)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())


def validate_output(verb: str, stdout: bytes | str) -> dict[str, Any]:
    """Parse a verb's ``--json`` stdout, validate it, and return it."""
    document: dict[str, Any] = json.loads(stdout)
    validate(verb, document)
    return document
