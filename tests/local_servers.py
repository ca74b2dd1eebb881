"""How real local OpenAI-compatible servers answer each structured-output form, as scripts for
`tests.scripted_servers.serve("openai", ...)`.

Status codes and error bodies follow each server's source; request validation runs through pydantic
models that copy the servers' own request models, so the error texts are pydantic's, as theirs are:

- llama-cpp-python 0.3 (`llama_cpp/server`): `ChatCompletionRequestResponseFormat.type` is
  `Literal["text", "json_object"]` with an optional `schema` that it compiles into a grammar; extra
  request fields are ignored. Its `RouteErrorHandler` turns every exception into HTTP 500
  `{"error": {"message": str(exc), "type": "internal_server_error", "param": null, "code": null}}`,
  except a prompt over the context window: HTTP 400, code `context_length_exceeded`.
- vLLM before 0.6 (`vllm/entrypoints/openai/protocol.py`, `api_server.py`): every request model has
  `extra="forbid"` and `ResponseFormat.type` is `Literal["text", "json_object"]`; `guided_json` is a
  request field. A validation error is HTTP 400 `{"object": "error", "message": str(errors),
  "type": "BadRequestError", "param": null, "code": 400}`.
- vLLM 0.6 and later: `response_format: json_schema` is constrained decoding; extra fields are
  ignored with a warning.
- Ollama 0.5 and later (`openai/openai.go`): `json_schema` becomes the native `format` (the schema),
  `json_object` becomes `format: "json"` (any JSON object), unknown fields are ignored; its errors
  are `{"error": {"message", "type", "param": null, "code": null}}`.

A constrained form answers `constrained(schema)`; an unconstrained one `free(body)`, by default the
prose a small model writes when nothing holds it to JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tests.scripted_servers import Reply, ok

Answer = Callable[[dict], Any]
PROSE = "Sure! This feature seems to be about cats, and maybe about the word 'the'."


def form_of(body: dict) -> tuple[str, dict | None]:
    """(form name, schema or None) of a chat-completions request body, as SAGE sends them."""
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return "json_schema", rf["json_schema"]["schema"]
    if rf.get("type") == "json_object":
        return ("json_object+schema", rf["schema"]) if "schema" in rf else ("json_object", None)
    if "guided_json" in body:
        return "guided_json", body["guided_json"]
    m = re.search(r"validates against this JSON Schema:\n(\{.*\})\s*$", body["messages"][0]["content"], re.S)
    return "prompt", (json.loads(m.group(1)) if m else None)


def _free(body: dict) -> str:
    return PROSE


# -- llama-cpp-python -------------------------------------------------------------------------------
class _LlamaResponseFormat(BaseModel):
    type: Literal["text", "json_object"]  # and an optional `schema` (extra fields are ignored)


class CreateChatCompletionRequest(BaseModel):
    """The part of llama-cpp-python's request model that structured output touches."""

    messages: list[dict]
    response_format: _LlamaResponseFormat | None = None


def _llama_message(exc: ValidationError) -> str:
    """str() of the FastAPI RequestValidationError that llama-cpp-python's RouteErrorHandler sends,
    as a real server (llama-cpp-python 0.3.36, FastAPI 0.165) words it."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    head = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''}:\n"
    where = (
        '  File "/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 376, '
        "in create_chat_completion\n    POST /v1/chat/completions"
    )
    return head + "".join(f"  {e}\n" for e in errors) + "\n" + where


def llama_cpp_python(
    constrained: Answer, free: Answer = _free, n_ctx: int | None = None
) -> Callable[[dict, int], Reply]:
    """llama-cpp-python's server. `n_ctx`: its context window in tokens (4 characters a token), past
    which it answers HTTP 400 context_length_exceeded."""

    def script(body: dict, _index: int) -> Reply:
        try:
            CreateChatCompletionRequest.model_validate(body)
        except ValidationError as exc:
            error = {
                "message": _llama_message(exc),
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
            return Reply(status=500, error_body={"error": error})
        if n_ctx is not None:
            prompt = sum(len(m["content"]) for m in body["messages"]) // 4
            completion = body.get("max_tokens") or 0
            if prompt + completion > n_ctx:
                message = (
                    f"This model's maximum context length is {n_ctx} tokens. However, you requested "
                    f"{prompt + completion} tokens ({prompt} in the messages, "
                    f"{completion} in the completion). "
                    "Please reduce the length of the messages or completion."
                )
                error = {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
                return Reply(status=400, error_body={"error": error})
        form, schema = form_of(body)
        return ok(constrained(schema)) if form == "json_object+schema" else ok(free(body))

    return script


# -- vLLM -------------------------------------------------------------------------------------------
class _Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _VllmResponseFormat(_Forbid):
    type: Literal["text", "json_object"]


class VllmChatCompletionRequest(_Forbid):
    """vLLM 0.5's request model, trimmed to the fields SAGE sends plus `guided_json`."""

    model: str
    messages: list[dict]
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: _VllmResponseFormat | None = None
    guided_json: dict | str | None = None


def vllm_0_5(constrained: Answer, free: Answer = _free) -> Callable[[dict, int], Reply]:
    """vLLM before 0.6: no `json_schema`, extra fields forbidden, `guided_json` constrains."""

    def script(body: dict, _index: int) -> Reply:
        try:
            VllmChatCompletionRequest.model_validate(body)
        except ValidationError as exc:  # FastAPI's RequestValidationError: str() of its error list
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            error = {"object": "error", "message": str(errors), "type": "BadRequestError", "param": None}
            return Reply(status=400, error_body={**error, "code": 400})
        form, schema = form_of(body)
        return ok(constrained(schema)) if form == "guided_json" else ok(free(body))

    return script


class _StrictChatCompletionRequest(_Forbid):
    model: str
    messages: list[dict]
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: _VllmResponseFormat | None = None


def strict(free: Answer = _free) -> Callable[[dict, int], Reply]:
    """A strict server with no constrained decoding: OpenAI's request model from before
    `json_schema`, extra fields forbidden (vLLM's models had that shape), errors as vLLM 0.5's."""

    def script(body: dict, _index: int) -> Reply:
        try:
            _StrictChatCompletionRequest.model_validate(body)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            error = {"object": "error", "message": str(errors), "type": "BadRequestError", "param": None}
            return Reply(status=400, error_body={**error, "code": 400})
        return ok(free(body))

    return script


def vllm(constrained: Answer, free: Answer = _free) -> Callable[[dict, int], Reply]:
    """vLLM 0.6 and later: `json_schema` constrains, unknown fields are ignored."""

    def script(body: dict, _index: int) -> Reply:
        form, schema = form_of(body)
        return ok(constrained(schema)) if form == "json_schema" else ok(free(body))

    return script


# -- Ollama -----------------------------------------------------------------------------------------
def ollama(
    constrained: Answer, free: Answer = _free, models: tuple[str, ...] = ()
) -> Callable[[dict, int], Reply]:
    """Ollama's OpenAI-compatible endpoint. `models`: the pulled models (empty: any)."""

    def script(body: dict, _index: int) -> Reply:
        if models and body["model"] not in models:
            message = f'model "{body["model"]}" not found, try pulling it first'
            error = {"message": message, "type": "not_found_error", "param": None, "code": None}
            return Reply(status=404, error_body={"error": error})
        form, schema = form_of(body)
        if form == "json_schema":
            return ok(constrained(schema))
        if form.startswith("json_object"):  # format "json": some JSON object, no schema
            return ok({"answer": free(body)})
        return ok(free(body))

    return script
