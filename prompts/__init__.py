"""Prompt templates and the JSON Schemas of every structured output SAGE asks an LLM for
(and of the Explanation it writes). Loaded by name so code never embeds a schema inline."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@cache
def schema(name: str) -> dict:
    """The JSON Schema `prompts/schemas/<name>.json`; `$ref`s to sibling schemas resolve in `validator`."""
    return json.loads((HERE / "schemas" / f"{name}.json").read_text())


@cache
def template(name: str) -> str:
    """The prompt template `prompts/<name>.md` (Python `str.format` fields)."""
    return (HERE / f"{name}.md").read_text()


def validator(name: str):
    """A jsonschema validator for schema `name` that resolves `$ref`s to the other shipped schemas."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text()))) for p in (HERE / "schemas").glob("*.json")
    ]
    registry = Registry().with_resources(resources)
    return Draft202012Validator(schema(name), registry=registry)
