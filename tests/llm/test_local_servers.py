"""`openai-compatible:` against scripted servers that answer each structured-output form as
llama-cpp-python, vLLM (old and new) and Ollama do (tests/local_servers.py): the backend finds the
form each accepts, remembers it per server, retries only what can succeed, and fails clearly."""

from __future__ import annotations

import json
import logging

import pytest
from jsonschema import Draft202012Validator

from sage.errors import ExplainerError
from sage.llm import LLMRequest, RetryConfig, make_backend
from sage.llm import output_forms as forms
from sage.llm.base import ExplainerCallError
from sage.llm.structured import bundled_schema
from sage.llm.transport import RequestRejected
from tests.local_servers import PROSE, form_of, llama_cpp_python, ollama, strict, vllm, vllm_0_5
from tests.scripted_servers import Reply, fail, ok, serve

FAST = RetryConfig(max_attempts=4, initial_wait=0.001, max_wait=0.01, timeout=5.0)
VALID = {"type": "token_set", "tokens": ["the", "a"]}
REQ = LLMRequest(
    task="predicate",
    schema_name="predicate",
    messages=[{"role": "system", "content": "You write predicates."}, {"role": "user", "content": "Which?"}],
    max_tokens=64,
)


def backend(srv, **kw):
    return make_backend(f"openai-compatible:{srv.url}:smollm2", retry=FAST, **kw)


def sent_forms(srv) -> list[str]:
    return [form_of(body)[0] for body in srv.requests]


def constrained(schema):
    assert schema is not None and schema.get("title") == "Predicate"
    return VALID


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (llama_cpp_python, ["json_schema", "json_object+schema"]),
        (vllm_0_5, ["json_schema", "json_object+schema", "guided_json"]),
        (vllm, ["json_schema"]),
        (ollama, ["json_schema"]),
    ],
)
def test_each_server_gets_the_first_form_it_accepts_and_keeps_it(server, expected, caplog):
    caplog.set_level(logging.INFO, logger="sage.llm.output_forms")
    with serve("openai", server(constrained)) as srv:
        first = backend(srv).complete(REQ)
        again = backend(srv).complete(REQ)  # a new backend for the same server: no new negotiation
    assert first.data == VALID and again.data == VALID and first.attempts == 1
    assert sent_forms(srv) == [*expected, expected[-1]]  # each rejection was not retried
    assert forms.remembered(srv.url).name == expected[-1]
    used = [r for r in caplog.records if "structured output via" in r.message]
    assert len(used) == 1 and f"via the {expected[-1]} form" in used[0].message
    # a fallback is a warning naming what the server said
    rejected = [r.message for r in caplog.records if "rejected the" in r.message]
    assert len(rejected) == len(expected) - 1
    if server is llama_cpp_python:
        assert "HTTP 500" in rejected[0] and "Input should be 'text' or 'json_object'" in rejected[0]


def test_a_server_that_refuses_every_constraint_gets_the_schema_in_the_prompt_and_a_reask():
    """A strict server without constrained decoding: the prompt form's first reply is prose,
    re-asked with the error, then valid."""
    replies = iter([PROSE, VALID])
    with serve("openai", strict(free=lambda body: next(replies))) as srv:
        resp = backend(srv).complete(REQ)
    assert resp.data == VALID and resp.attempts == 2
    assert sent_forms(srv) == ["json_schema", "json_object+schema", "guided_json", "prompt", "prompt"]
    prompt = srv.requests[3]["messages"][0]["content"]
    assert prompt.startswith("You write predicates.") and '"title":"Predicate"' in prompt
    assert "contains no JSON object" in srv.requests[4]["messages"][-1]["content"]  # the re-ask says why


def test_a_rejection_that_is_not_about_the_form_fails_at_once_with_the_servers_words():
    with (
        serve("openai", llama_cpp_python(constrained, n_ctx=16)) as srv,
        pytest.raises(ExplainerCallError) as info,
    ):
        backend(srv).complete(REQ)
    # json_schema is refused (HTTP 500); json_object+schema reaches the context check (HTTP 400)
    assert sent_forms(srv) == ["json_schema", "json_object+schema"]
    assert isinstance(info.value.__cause__, RequestRejected)
    assert "HTTP 400: This model's maximum context length is 16 tokens" in str(info.value)
    assert forms.remembered(srv.url) is None  # nothing was accepted


def test_unknown_model_on_ollama_is_not_retried():
    with (
        serve("openai", ollama(constrained, models=("llama3.2",))) as srv,
        pytest.raises(ExplainerCallError, match='model or endpoint not found.*model "smollm2" not found'),
    ):
        backend(srv).complete(REQ)
    assert len(srv.requests) == 1


def test_the_same_500_twice_is_not_retried_again_but_a_loading_503_is():
    crash = {"error": {"message": "llama_decode returned -3", "type": "internal_server_error"}}
    with (
        serve("openai", [Reply(status=500, error_body=crash)] * 4) as srv,
        pytest.raises(ExplainerCallError) as info,
    ):
        backend(srv).complete(REQ)
    assert len(srv.requests) == 2 and "the same error came back on a retry" in str(info.value)

    loading = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    with serve("openai", [Reply(status=503, error_body=loading)] * 3 + [ok(VALID)]) as srv:
        assert backend(srv).complete(REQ).data == VALID
    assert len(srv.requests) == 4


def test_a_reply_cut_off_at_max_tokens_is_invalid_and_reasked_then_fails_clearly():
    cut = ok('{"type": "token_set", "tokens": ["the"]}', finish_reason="length")  # parses, yet cut off
    with serve("openai", [cut, cut, cut]) as srv, pytest.raises(ExplainerCallError) as info:
        backend(srv, max_schema_retries=2).complete(REQ)
    assert len(srv.requests) == 3
    assert "cut off at the 64-token limit" in str(info.value)
    assert "cut off at the 64-token limit" in srv.requests[1]["messages"][-1]["content"]


def test_the_schema_sent_drops_grammar_hostile_keywords_but_validation_keeps_them():
    conclusion = bundled_schema("conclusion")
    sent = forms.sent_schema(conclusion)
    text = str(sent)
    assert "maxLength" not in text and "maxLength" in str(conclusion)
    assert sent["properties"]["labels"]["maxItems"] == 4  # other limits stay
    # a property *named* pattern (the regex predicate's) is not the `pattern` keyword
    predicate = forms.sent_schema(bundled_schema("predicate"))
    regex = next(b for b in predicate["oneOf"] if b["properties"]["type"].get("const") == "regex")
    assert regex["properties"]["pattern"] == {"type": "string", "minLength": 1}
    assert forms.sent_schema({"type": "string", "pattern": "^a+$"}) == {"type": "string"}
    # the recursive predicate refers to itself as "#" (llama-cpp-python: "Unsupported ref #", then an
    # unconstrained grammar); sent, it refers into $defs, and accepts and refuses the same instances
    assert '"$ref": "#"' not in json.dumps(predicate) and predicate["title"] == "Predicate"
    full, sent = Draft202012Validator(bundled_schema("predicate")), Draft202012Validator(predicate)
    nested = {"type": "not", "arg": {"type": "or", "any": [{"type": "token_set", "tokens": ["a"]}]}}
    for instance in (
        nested,
        {"type": "not", "arg": {"type": "or", "any": [{"type": "nope"}]}},
        {"tokens": []},
    ):
        assert full.is_valid(instance) == sent.is_valid(instance)
    assert sent.is_valid(nested) and not sent.is_valid({"type": "not", "arg": {}})

    too_long = {"labels": ["x" * 200], "description": "A long enough description.", "best_hypothesis_ids": []}
    req = LLMRequest(task="conclude", schema_name="conclusion", messages=REQ.messages, max_tokens=64)
    with (
        serve("openai", vllm(lambda schema: too_long)) as srv,
        pytest.raises(ExplainerCallError, match="is too long"),
    ):
        backend(srv, max_schema_retries=0).complete(req)
    assert "maxLength" not in str(srv.requests[0])


def test_a_stopped_server_fails_the_check_in_one_clear_line():
    with serve("openai", []) as srv:
        url = srv.url
    b = make_backend(
        f"openai-compatible:{url}:smollm2", retry=RetryConfig(max_attempts=2, initial_wait=0.001)
    )
    with pytest.raises(ExplainerError) as info:
        b.check()
    message = str(info.value)
    assert "\n" not in message and f"cannot reach the server at {url}" in message
    assert "gave up after 2 attempts" in message


def test_the_check_accepts_any_http_answer():
    with serve("openai", []) as srv:
        backend(srv).check()  # GET /v1/models answers
        srv.protocol = "x"  # now it answers 404 to /v1/models: still a running server
        backend(srv).check()


def test_openai_itself_is_not_negotiated(monkeypatch):
    """`openai:` (no base URL in the spec) sends the full schema in the OpenAI form only."""
    with serve("openai", [fail(400, "Invalid schema for response_format")]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        b = make_backend("openai:gpt-4o-mini", retry=FAST)
        with pytest.raises(ExplainerCallError, match="rejected the request"):
            b.complete(REQ)
    assert len(srv.requests) == 1 and form_of(srv.requests[0])[0] == "json_schema"


def test_a_server_on_this_machine_gets_the_long_timeout():
    """A CPU server goes on generating after a client times out: a retry would queue the same work."""
    retry = RetryConfig(timeout=7.0, local_timeout=600.0)
    local = make_backend("openai-compatible:http://127.0.0.1:8080/v1:smollm2", retry=retry)
    remote = make_backend("openai-compatible:http://gpu-box.example:8000/v1:m", retry=retry)
    assert local.client.timeout == 600.0 and remote.client.timeout == 7.0
