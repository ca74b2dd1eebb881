"""The real openai / anthropic client libraries against scripted servers on 127.0.0.1."""

import pytest

from sage.errors import ConfigError, ExplainerError
from sage.llm import ExplainerCallError, LLMRequest, RetryConfig, make_backend
from sage.llm.anthropic_backend import AnthropicBackend
from sage.llm.openai_backend import OpenAIBackend
from tests.scripted_servers import fail, ok, serve

FAST = RetryConfig(max_attempts=3, initial_wait=0.001, max_wait=0.01, timeout=5.0)
VALID = {"type": "token_set", "tokens": ["the", "a"]}
VIOLATING = {"type": "token_set"}  # predicate.json: a token_set needs "tokens"
REQ = LLMRequest(
    task="predicate",
    schema_name="predicate",
    messages=[
        {"role": "system", "content": "You write predicates."},
        {"role": "user", "content": "Which tokens?"},
    ],
    max_tokens=64,
)
OPENAI_MODEL, ANTHROPIC_MODEL = "gpt-4o-mini", "claude-haiku-4-5-20251001"


@pytest.fixture
def backend(monkeypatch):
    """Backends for the openai: / anthropic: specs, routed to a scripted server by the SDKs' base URLs."""

    def make(srv, model=None, **kw):
        if srv.protocol == "openai":
            monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
            return OpenAIBackend(model or OPENAI_MODEL, api_key="sk-test", retry=FAST, **kw)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        return AnthropicBackend(model or ANTHROPIC_MODEL, api_key="sk-ant-test", retry=FAST, **kw)

    return make


BOTH = pytest.mark.parametrize("protocol", ["openai", "anthropic"])


@BOTH
def test_valid_answer_and_wire_format(protocol, backend):
    with serve(protocol, [ok(VALID, input_tokens=100, output_tokens=20)]) as srv:
        resp = backend(srv).complete(REQ)
    assert resp.data == VALID and resp.attempts == 1
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (100, 20)
    body = srv.requests[0]
    if protocol == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["oneOf"]
        assert body["messages"][0]["role"] == "system"
        assert srv.request_headers[0]["authorization"] == "Bearer sk-test"
    else:
        assert body["tool_choice"]["type"] == "tool"
        assert body["tools"][0]["input_schema"]["oneOf"]
        assert body["system"] == "You write predicates." and body["messages"][0]["role"] == "user"


def test_malformed_json_then_valid_is_reasked_and_usage_summed(backend):
    with serve(
        "openai",
        [
            ok('{"type": "token_set", "tokens": ["the"', input_tokens=50, output_tokens=10),
            ok(VALID, input_tokens=70, output_tokens=12),
        ],
    ) as srv:
        resp = backend(srv).complete(REQ)
    assert resp.data == VALID and resp.attempts == 2
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (120, 22)
    reask = srv.requests[1]["messages"]
    assert reask[-2]["role"] == "assistant" and reask[-1]["role"] == "user"
    assert "not valid JSON" in reask[-1]["content"]


def test_json_inside_prose_and_fences_is_accepted(backend):
    with serve("openai", [ok('Sure!\n```json\n{"type": "structural", "property": "digit"}\n```')]) as srv:
        resp = backend(srv).complete(REQ)
    assert resp.data == {"type": "structural", "property": "digit"}


@BOTH
def test_schema_violation_every_time_fails_clearly(protocol, backend):
    with (
        serve(protocol, [ok(VIOLATING, input_tokens=10, output_tokens=5)] * 3) as srv,
        pytest.raises(ExplainerCallError) as info,
    ):
        backend(srv, max_schema_retries=2).complete(REQ)
    err = info.value
    assert len(srv.requests) == 3 and err.attempts == 3
    assert "no valid predicate output after 3 attempts" in str(
        err
    ) and "'tokens' is a required property" in str(err)
    assert err.usage.input_tokens == 30  # the tokens spent are still accounted
    assert (
        "'tokens' is a required property" in srv.requests[2]["messages"][-1]["content"]
    )  # the error was fed back


@BOTH
@pytest.mark.parametrize("status", [429, 500])
def test_transient_error_then_success_is_retried(protocol, status, backend):
    with serve(protocol, [fail(status), ok(VALID)]) as srv:
        resp = backend(srv).complete(REQ)
    assert resp.data == VALID and resp.attempts == 1 and len(srv.requests) == 2


def test_timeout_then_success_is_retried():
    quick = RetryConfig(max_attempts=3, initial_wait=0.001, max_wait=0.01, timeout=0.3, local_timeout=0.3)
    with serve("openai", [ok(VALID, delay=1.0), ok(VALID)]) as srv:
        resp = OpenAIBackend(OPENAI_MODEL, base_url=srv.url, api_key="k", retry=quick).complete(REQ)
    assert resp.data == VALID and len(srv.requests) == 2


def test_retries_are_bounded(backend):
    with (
        serve("openai", [fail(503)] * 5) as srv,
        pytest.raises(ExplainerError, match="gave up after 3 attempts"),
    ):
        backend(srv).complete(REQ)
    assert len(srv.requests) == 3  # the SDK itself did not retry (max_retries=0)


@BOTH
def test_bad_api_key_fails_at_once(protocol, backend):
    with (
        serve(protocol, [ok(VALID)], api_key="the-right-key") as srv,
        pytest.raises(ExplainerError, match=f"invalid API key for {protocol}:"),
    ):
        backend(srv).complete(REQ)
    assert len(srv.requests) == 1


def test_unknown_model_404_fails_at_once(backend):
    with (
        serve("openai", [fail(404, "The model `gpt-9` does not exist")] * 3) as srv,
        pytest.raises(ExplainerError, match="model or endpoint not found"),
    ):
        backend(srv).complete(REQ)
    assert len(srv.requests) == 1


@BOTH
def test_cost_from_price_table(protocol, backend):
    with serve(protocol, [ok(VALID, input_tokens=1_000_000, output_tokens=500_000)]) as srv:
        usage = backend(srv).complete(REQ).usage
    expected = 0.15 + 0.5 * 0.60 if protocol == "openai" else 1.00 + 0.5 * 5.00
    assert usage.usd == pytest.approx(expected) and usage.usd_known


def test_price_override_and_unknown_model(monkeypatch, caplog, backend):
    with serve("openai", [ok(VALID, input_tokens=2000, output_tokens=1000)] * 3) as srv:
        priced = backend(srv, prices={OPENAI_MODEL: {"input": 1.0, "output": 2.0}}).complete(REQ).usage
        b = backend(srv, model="mystery-model")
        unknown = b.complete(REQ).usage + b.complete(REQ).usage
    assert priced.usd == pytest.approx(2000e-6 + 2000e-6) and priced.usd_known
    # a paid model with no known price: counted as $0 but flagged, with one warning naming it
    assert unknown.usd == 0.0 and not unknown.usd_known and not b.total_usage.usd_known
    assert [r.message.count("mystery-model") for r in caplog.records] == [1]


def test_missing_api_keys_are_config_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_backend("openai:gpt-4o-mini")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        make_backend("anthropic:claude-3-5-haiku-latest")


def test_make_backend_specs_reach_scripted_servers(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    with serve("openai", [ok(VALID)] * 2) as oa, serve("anthropic", [ok(VALID)]) as an:
        monkeypatch.setenv("OPENAI_BASE_URL", oa.url)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", an.url)
        assert make_backend("openai:gpt-4o", retry=FAST).complete(REQ).data == VALID
        assert make_backend("anthropic:claude-opus-4-5", retry=FAST).complete(REQ).data == VALID
        compat = make_backend(f"openai-compatible:{oa.url}:smollm:135m", retry=FAST)
        assert compat.model == "smollm:135m"
        resp = compat.complete(REQ)
    assert resp.data == VALID and resp.usage.usd == 0.0 and resp.usage.usd_known  # local server: free
    assert oa.request_headers[0]["authorization"] == "Bearer sk-env"
    sent = an.request_headers[0]
    assert "sk-ant-env" in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    assert oa.requests[1]["model"] == "smollm:135m" and "max_tokens" in oa.requests[1]
    assert "max_completion_tokens" in oa.requests[0]


def test_openai_top_logprobs(backend):
    with serve("openai", [ok("5", logprobs=[{"5": -0.1, "4": -2.5, "0": -4.0}])]) as srv:
        b = backend(srv)
        out = b.top_logprobs([{"role": "user", "content": "Activation?"}], n=3)
    assert out == [{"5": -0.1, "4": -2.5, "0": -4.0}]
    assert srv.requests[0]["logprobs"] is True and srv.requests[0]["top_logprobs"] == 3
    assert b.total_usage.input_tokens > 0


def test_anthropic_has_no_logprobs(backend):
    with serve("anthropic", []) as srv, pytest.raises(NotImplementedError):
        backend(srv).top_logprobs([{"role": "user", "content": "x"}])


def test_script_callable_and_exhaustion(backend):
    def script(body, index):
        return ok(VALID, input_tokens=index + 1, output_tokens=1)

    with serve("openai", script) as srv:
        b = backend(srv)
        for _ in range(3):
            b.complete(REQ)
    assert b.total_usage.input_tokens == 1 + 2 + 3 and srv.usage_served == [6, 3]
    with serve("openai", []) as srv, pytest.raises(ExplainerError, match="script exhausted"):
        backend(srv).complete(REQ)
