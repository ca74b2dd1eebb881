"""Structured output helpers: self-contained schemas for APIs, JSON extraction from
free text, and readable validation errors."""

from __future__ import annotations

import json
import re
from functools import cache

from jsonschema.exceptions import best_match

import prompts

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@cache
def _bundled(name: str) -> str:
    defs: dict[str, dict] = {}

    def rewrite(node, here: str):
        if isinstance(node, list):
            return [rewrite(v, here) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: rewrite(v, here) for k, v in node.items() if k not in ("$id", "$schema")}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and here != name:
            out["$ref"] = f"#/$defs/{here}{ref[1:]}"  # a local ref inside an embedded schema
        elif isinstance(ref, str) and not ref.startswith("#"):
            file, _, frag = ref.partition("#")
            target = file.removesuffix(".json")
            if target == name:
                out["$ref"] = "#" + frag
            else:
                if target not in defs:
                    defs[target] = {}  # placeholder: the target may refer back to itself
                    defs[target] = rewrite(prompts.schema(target), target)
                out["$ref"] = f"#/$defs/{target}{frag}"
        return out

    root = rewrite(prompts.schema(name), name)
    if defs:
        root.setdefault("$defs", {}).update(defs)
    return json.dumps(root)


def bundled_schema(name: str) -> dict:
    """The shipped schema `name` made self-contained for an API: `$ref`s to sibling schema
    files become `#/$defs/...` (a self-reference becomes `#`), `$id`/`$schema` are dropped."""
    return json.loads(_bundled(name))


def extract_json(text: str) -> dict:
    """The first JSON object in a model's reply (bare, inside ``` fences, or after prose).

    Raises ValueError saying why when there is none."""
    text = text.strip()
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    first_error = None
    for cand in candidates:
        for start in [i for i, ch in enumerate(cand) if ch == "{"]:
            try:
                obj, _ = decoder.raw_decode(cand, start)
            except json.JSONDecodeError as exc:
                first_error = first_error or exc
                continue
            if isinstance(obj, dict):
                return obj
    if first_error is not None:
        raise ValueError(f"the reply is not valid JSON: {first_error}")
    raise ValueError("the reply contains no JSON object")


def validation_error(validator, data) -> str | None:
    """None if `data` is valid, else the most relevant violation as `message (at path)`."""

    err = best_match(validator.iter_errors(data))
    return None if err is None else _describe(err)


def _describe(err) -> str:

    if err.validator in ("oneOf", "anyOf") and err.context:
        # a tagged union ({"type": {"const": ...}}): explain the one branch whose tag matched
        branches: dict = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        tagged = [errs for errs in branches.values() if not any(e.validator == "const" for e in errs)]
        if len(tagged) == 1:
            return _describe(best_match(tagged[0]))
    path = "/".join(str(p) for p in err.absolute_path) or "<root>"
    return f"{err.message} (at {path})"
