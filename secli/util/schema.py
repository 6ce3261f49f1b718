"""Checking a document read from a file against ``secli/schemas/result.schema.json``, without
a dependency: the subset of JSON Schema (draft 2020-12) the schema uses.

Why not ``jsonschema``: it is a development dependency only (the tests validate every command's
output with it, and compare this checker with it), and ``secli report`` must type-check any
results file it is given. A document that does not fit is refused with the first field that
does not, by its path (``results.sites[2].bins``), and what was expected there.
"""

from __future__ import annotations

import functools
import json
import math
import re
from importlib import resources
from typing import Any

from secli.util.errors import SecliUsageError, shorten

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@functools.cache
def result_schema() -> dict[str, Any]:
    """The envelope's schema, read as package data."""
    text = resources.files("secli").joinpath("schemas").joinpath("result.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def problem(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "") -> str | None:
    """The first place where ``value`` does not fit ``schema`` (``path: expected ...``), or None."""
    if "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        found = problem(value, target, root, path)
        if found:
            return found
    here = path or "the document"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[k](value) for k in kinds):
            return f"{here} must be {' or '.join(kinds)}, not {_describe(value)}"
    if "const" in schema and value != schema["const"]:
        return f"{here} must be {schema['const']!r}, not {_describe(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{here} must be one of {', '.join(map(repr, schema['enum']))}, not {_describe(value)}"
    found = _bounds(value, schema, here)
    if found:
        return found
    if isinstance(value, dict):
        found = _object(value, schema, root, path)
        if found:
            return found
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found = problem(item, schema["items"], root, f"{path}[{index}]")
            if found:
                return found
    return _combined(value, schema, root, path)


def _bounds(value: Any, schema: dict[str, Any], here: str) -> str | None:
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{here} must be >= {schema['minimum']}, not {value}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{here} must be <= {schema['maximum']}, not {value}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{here} must not be empty"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{here} is {len(value):,} characters long; at most {schema['maxLength']:,}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{here} does not look like {schema['pattern']!r}: {_describe(value)}"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{here} must hold at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{here} holds {len(value):,} items; at most {schema['maxItems']:,}"
    return None


def _object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    for key in schema.get("required", []):
        if key not in value:
            return f"{path or 'the document'} lacks {key!r}"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if key in properties:
            found = problem(item, properties[key], root, where)
        elif extra is False:
            found = f"{where} is not a field of this document"
        elif isinstance(extra, dict):
            found = problem(item, extra, root, where)
        else:
            found = None
        if found:
            return found
    return None


def _combined(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    for part in schema.get("allOf", []):
        found = problem(value, part, root, path)
        if found:
            return found
    if "anyOf" in schema and all(problem(value, part, root, path) for part in schema["anyOf"]):
        return problem(value, schema["anyOf"][0], root, path)
    if "if" in schema and problem(value, schema["if"], root, path) is None:
        return problem(value, schema.get("then", {}), root, path)
    if "if" in schema and "else" in schema:
        return problem(value, schema["else"], root, path)
    return None


def _describe(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    return shorten(repr(value), 60)


def check_result(document: Any, where: str) -> None:
    """Refuse (exit 2) a results document that does not fit the envelope's schema."""
    schema = result_schema()
    found = problem(document, schema, schema)
    if found:
        raise SecliUsageError(f"{where} is not a valid secli results file: {found}")
