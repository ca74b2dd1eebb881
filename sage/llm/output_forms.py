"""Structured-output forms for `openai-compatible:` servers, tried in order until one is accepted.

Servers that speak OpenAI's chat-completions protocol disagree on how to ask for JSON that follows
a schema. Read from each server's source (2026-11):

- `json_schema`: `response_format: {type: json_schema, json_schema: {name, schema, strict}}`.
  OpenAI; vLLM since 0.6; Ollama since 0.5 (its OpenAI layer maps it to the native `format`:
  `openai/openai.go`, `FromChatRequest`); llama.cpp's C++ `llama-server`.
- `json_object+schema`: `response_format: {type: json_object, schema}`. llama-cpp-python's server,
  whose pydantic request model allows only `'text'` or `'json_object'` (it answers `json_schema`
  with HTTP 500) and compiles `schema` into a grammar.
- `guided_json`: a top-level `guided_json: schema`. vLLM before 0.6, whose `response_format.type`
  was `'text'` or `'json_object'` and whose request models forbade extra fields (HTTP 400). Newer
  vLLM calls it `structured_outputs: {json}`, and accepts `json_schema` first anyway.
- `prompt`: the schema in the system message, nothing constrained. Any server.

Ollama's native `format` is no form of its own here: the OpenAI-compatible endpoint ignores fields
it does not know and turns `json_schema` into `format` itself.

A form is given up only when the server's rejection names one of its parameters (`rejected_by`); any
other rejection (context too long, unknown model) is the caller's error at once. The form that works
is remembered per server (base URL) for the rest of the process, and logged once.

Every reply is still validated against the full schema by the backend (`Backend.complete`), so a
server that accepts a form but ignores it costs a re-ask, never a wrong answer.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sage.llm.transport import RequestRejected

log = logging.getLogger(__name__)
T = TypeVar("T")

#: schema keywords left out of the schema sent to a server (the reply is still validated against
#: the full schema): llama.cpp compiles `maxLength` into a grammar rule repeated that many times, and
#: a 1200-character limit crashed llama-cpp-python's server; regex `pattern`s are not portable.
_UNSENT_KEYWORDS = ("maxLength", "pattern")
#: keywords whose value maps names to subschemas (the names are not keywords)
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")


#: where `sent_schema` moves a schema that refers to itself (`"$ref": "#"`)
_ROOT_DEF = "root"


def sent_schema(schema: dict) -> dict:
    """`schema` as sent to a server: without the keywords in `_UNSENT_KEYWORDS` wherever they occur
    as keywords (a property named `pattern` stays), and with a self-reference (`"$ref": "#"`, the
    recursive predicate's) pointing into `$defs` instead, which llama-cpp-python's grammar compiler
    resolves (it rejects `#` with "Unsupported ref #" and silently falls back to unconstrained JSON).
    """
    body = _strip(schema)
    if '"$ref": "#"' not in json.dumps(body):
        return body
    defs = _point_root_refs(body.pop("$defs", {}))
    root = _point_root_refs(body)  # the root stays the root (a top-level `$ref` is not resolved there)
    return {**root, "$defs": {**defs, _ROOT_DEF: root}}


def _point_root_refs(node):
    if isinstance(node, list):
        return [_point_root_refs(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _point_root_refs(v) for k, v in node.items()}
    if out.get("$ref") == "#":
        out["$ref"] = f"#/$defs/{_ROOT_DEF}"
    return out


def _strip(node):
    """`node` without the keywords in `_UNSENT_KEYWORDS` (names under `_SCHEMA_MAPS` are kept)."""
    if isinstance(node, list):
        return [_strip(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strip(sub) for name, sub in value.items()}
        elif key not in _UNSENT_KEYWORDS or isinstance(value, dict):
            out[key] = _strip(value)
    return out


def _api_name(schema_name: str) -> str:
    """A `json_schema.name` OpenAI accepts: letters, digits, `_` and `-`, at most 64."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema_name)[:64]


def json_schema_format(schema_name: str, schema: dict) -> dict:
    """OpenAI's `response_format` for `schema`. `strict: False`: strict mode needs every property
    required and `additionalProperties: false`, which SAGE's schemas do not promise."""
    return {
        "type": "json_schema",
        "json_schema": {"name": _api_name(schema_name), "schema": schema, "strict": False},
    }


@dataclass(frozen=True)
class OutputForm:
    """One way of asking a server for schema-shaped JSON."""

    #: short name, used in logs and tests
    name: str
    #: the request parameters that carry this form; a rejection naming one of them rejects the form
    params: tuple[str, ...]
    #: (schema name, schema) -> the request's extra fields (`response_format`, `extra_body`)
    fields: Callable[[str, dict], dict]
    #: whether the schema is written into the prompt instead
    in_prompt: bool = False

    def request(self, messages: list[dict], schema_name: str, schema: dict) -> dict:
        """The keyword arguments of a chat-completions call asking for `schema` in this form."""
        if self.in_prompt:
            messages = with_schema_in_prompt(messages, schema)
        return {"messages": messages, **self.fields(schema_name, sent_schema(schema))}

    def rejected_by(self, server_message: str) -> bool:
        """Whether a rejection saying `server_message` is about this form's parameters."""
        return any(p in server_message for p in self.params)


def with_schema_in_prompt(messages: list[dict], schema: dict) -> list[dict]:
    """`messages` with the schema appended to the system message (one is added if there is none)."""
    note = (
        "Reply with one JSON object, and nothing else, that validates against this JSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{note}"
    else:
        out.insert(0, {"role": "system", "content": note})
    return out


FORMS: tuple[OutputForm, ...] = (
    OutputForm(
        "json_schema",
        ("response_format",),
        lambda name, schema: {"response_format": json_schema_format(name, schema)},
    ),
    OutputForm(
        "json_object+schema",
        ("response_format",),
        lambda _name, schema: {"response_format": {"type": "json_object", "schema": schema}},
    ),
    OutputForm(
        "guided_json",
        ("guided_json",),
        lambda _name, schema: {"extra_body": {"guided_json": schema}},
    ),
    OutputForm("prompt", (), lambda _name, _schema: {}, in_prompt=True),
)
FORM_BY_NAME = {f.name: f for f in FORMS}

_working: dict[str, str] = {}
_lock = threading.Lock()


def remembered(server: str) -> OutputForm | None:
    """The form that worked with `server` in this process, if any."""
    with _lock:
        name = _working.get(server)
    return FORM_BY_NAME[name] if name else None


def forget(server: str | None = None) -> None:
    """Forget what was learned about `server` (every server when None)."""
    with _lock:
        if server is None:
            _working.clear()
        else:
            _working.pop(server, None)


def negotiate(server: str, send: Callable[[OutputForm], T], who: str) -> T:
    """`send(form)` with the form remembered for `server`, or with each form of `FORMS` in turn
    until the server accepts one; the accepted form is remembered. A rejection that does not name
    the form's parameters, or of the last form tried, is raised as it is."""
    known = remembered(server)
    forms = (known,) if known is not None else FORMS
    for i, form in enumerate(forms):
        try:
            result = send(form)
        except RequestRejected as exc:
            if i == len(forms) - 1 or not form.rejected_by(exc.server_message):
                raise
            log.warning(
                "%s: the server rejected the %s structured-output form (HTTP %s: %s); trying %s",
                who,
                form.name,
                exc.status,
                " ".join(exc.server_message.split())[:300],
                forms[i + 1].name,
            )
            continue
        if known is None:
            with _lock:
                _working[server] = form.name
            (log.info if i == 0 else log.warning)(
                "%s: structured output via the %s form (kept for this server)", who, form.name
            )
        return result
    raise AssertionError("unreachable: the last form either returns or raises")
