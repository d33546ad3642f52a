"""JSON Schemas (draft 2020-12): the source of truth for every topic and the registry file.

The ``*.json`` files ship as package data, so they are read through
``importlib.resources`` and installed code finds them without a source tree.
``jsonschema`` is imported lazily: loading a schema as a dict needs only the
standard library.

>>> load_schema("telemetry")["$id"]
'https://ewarn.example/schemas/telemetry/1'
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.protocols import Validator

__all__ = ["format_checker", "load_schema", "schema_names", "validator_for"]

_PACKAGE = "schemas"  # not __name__: stays right when the file is run by doctest


@cache
def _schema_text(name: str) -> str:
    if name not in schema_names():
        raise KeyError(f"no schema named {name!r}; known: {', '.join(schema_names())}")
    return resources.files(_PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")


@cache
def _names() -> tuple[str, ...]:
    root = resources.files(_PACKAGE)
    return tuple(
        sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))
    )


def schema_names() -> list[str]:
    """Names of the shipped schemas (file stems), e.g. ``["alert", "deadletter", ...]``."""
    return list(_names())


def load_schema(name: str) -> dict[str, Any]:
    """Return a fresh copy of schema ``name`` (a file stem): callers may mutate it."""
    data: dict[str, Any] = json.loads(_schema_text(name))
    return data


def format_checker() -> FormatChecker:
    """A format checker that really checks ``date-time`` (needs ``rfc3339-validator``).

    jsonschema silently skips formats whose checker library is missing; a
    contract test asserts that ``date-time`` is enforced here.
    """
    from jsonschema import Draft202012Validator

    return Draft202012Validator.FORMAT_CHECKER


def validator_for(name: str, *, check_formats: bool = True) -> Validator:
    """A draft 2020-12 validator for schema ``name`` that resolves the other schemas' ``$id``s."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources_ = [Resource.from_contents(load_schema(n)) for n in schema_names()]
    registry: Registry[Any] = Registry().with_resources(
        (str(r.contents["$id"]), r) for r in resources_
    )
    return Draft202012Validator(
        load_schema(name),
        registry=registry,
        format_checker=format_checker() if check_formats else None,
    )
