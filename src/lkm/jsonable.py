"""lkm's records as JSON: one document shape for every verb's ``--json``.

A document is ``{"schema": "lkm/VERB/N", "records": [...]}``. ``N`` is the version of the
verb's schema, kept as JSON Schema in ``lkm/schemas/VERB-N.json`` (shipped with the package):
a change that could break a reader (a field removed, renamed or retyped) makes a new version;
a field added does not.

Records are NamedTuples, dataclasses, enums, tuples and dicts of them; each becomes its JSON
shape here, so a verb's library call and its ``--json`` output show the same names. Text read
from module files is kept by lkm as it was (undecodable bytes as surrogate escapes); JSON holds
only Unicode, so such bytes become U+FFFD here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from lkm import enum_lite

# Each verb with ``--json``, and the version of its schema.
SCHEMAS: dict[str, int] = {
    "loaded": 1,
    "closure": 1,
    "status": 1,
    "drivers": 1,
    "graph": 1,
    "show": 1,
    "keys": 1,
    "sign": 1,
    "audit": 1,
    "verify": 1,
    "modules-load": 1,
}

JSON = Any  # dict[str, JSON] | list[JSON] | str | int | float | bool | None


def schema_id(verb: str) -> str:
    """The ``schema`` a verb's documents carry, e.g. ``lkm/show/1``."""
    return f"lkm/{verb}/{SCHEMAS[verb]}"


def schema_file(verb: str) -> str:
    """The file name of a verb's schema inside ``lkm/schemas``."""
    return f"{verb}-{SCHEMAS[verb]}.json"


def document(verb: str, records: Sequence[object]) -> dict[str, JSON]:
    """The ``--json`` document of ``verb`` for ``records``."""
    return {"schema": schema_id(verb), "records": [to_jsonable(r) for r in records]}


def dumps(verb: str, records: Sequence[object]) -> str:
    """:func:`document` as text: indented, keys in record order, one newline at the end."""
    import json

    return json.dumps(document(verb, records), indent=2, ensure_ascii=False) + "\n"


def to_jsonable(value: object) -> JSON:
    """``value`` as JSON data: a NamedTuple or dataclass is an object of its fields (a
    ``to_json`` method, where a record has one, decides instead), an enum its value, a tuple
    or list an array, bytes lowercase hex."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _text(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if isinstance(value, (enum.Enum, enum_lite.Enum)):  # the start-up path's enums too
        return to_jsonable(value.value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: to_jsonable(item) for key, item in value._asdict().items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(item) for item in items]
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"no JSON shape for {type(value).__name__}")


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


__all__ = ["SCHEMAS", "document", "dumps", "schema_file", "schema_id", "to_jsonable"]
