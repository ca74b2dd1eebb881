"""The agent loop against a real local LLM server (opt-in).

    scripts/llama_server.sh &          # llama-cpp-python serving the embedded SmolLM2 GGUF
    SAGE_TEST_LLAMA_SERVER=http://127.0.0.1:8080/v1 python -m pytest -m llama_server

`SAGE_TEST_LLAMA_MODEL` names the served model (default `smollm2`, the script's alias). The subject
model and store are the tiny test fixtures; only the explainer is real, so this checks the wire:
the structured-output form the server accepts, schema-valid answers for every task, and a whole
run that ends with the model's own hypotheses.
"""

from __future__ import annotations

import os

import pytest

from sage.llm import LLMRequest, make_backend
from sage.llm import output_forms as forms
from sage.runs import Session, explain, validate_explanation
from tests.agent_support import agent_store, build_store, live_features  # noqa: F401 (the `store` fixture)

URL = os.environ.get("SAGE_TEST_LLAMA_SERVER")
MODEL = os.environ.get("SAGE_TEST_LLAMA_MODEL", "smollm2")
pytestmark = [
    pytest.mark.llama_server,
    pytest.mark.skipif(
        not URL,
        reason="set SAGE_TEST_LLAMA_SERVER=http://127.0.0.1:8080/v1 (scripts/llama_server.sh serves one)",
    ),
]


@pytest.fixture
def backend():
    forms.forget()
    b = make_backend(f"openai-compatible:{URL}:{MODEL}")
    b.check()
    return b


def test_the_server_answers_a_schema_valid_predicate(backend):
    req = LLMRequest(
        task="predicate",
        schema_name="predicate",
        messages=[
            {"role": "system", "content": "Answer with one JSON object."},
            {"role": "user", "content": "Write a token_set predicate for the tokens 'cat' and 'dog'."},
        ],
        max_tokens=200,
    )
    resp = backend.complete(req)  # validated against prompts/schemas/predicate.json, or it raises
    assert resp.data["type"] in {"token_set", "regex", "preceded_by", "structural", "and", "or", "not"}
    assert forms.remembered(URL) is not None


def test_the_whole_loop_ends_with_the_models_hypotheses(backend, store):
    feature = live_features(store, 1)[0]
    session = Session(store.subject, store, backend, "tiny")
    data = explain(feature, session=session, max_rounds=2).to_dict()
    validate_explanation(data)
    # every answer was schema-valid (complete() raises otherwise, and the run would say it failed)
    assert not data["stop_reason"].startswith("explainer_error"), data["description"]
    assert data["hypotheses"] and data["concluded_by"] == backend.name
    assert data["cost"]["llm_calls"] >= 4  # hypothesize, design, analyze, conclude at least
