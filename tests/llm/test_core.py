"""Backend-independent logic: specs, pricing, JSON extraction, schema bundling, retries, re-asking."""

import json
import sys
import types

import pytest
from jsonschema import Draft202012Validator

from sage.errors import ConfigError, ExplainerError
from sage.llm import LLMRequest, RetryConfig, Usage, make_backend, parse_compatible
from sage.llm.base import Backend, ExplainerCallError
from sage.llm.pricing import PriceTable
from sage.llm.structured import bundled_schema, extract_json
from sage.llm.transport import TransientError, call_with_retries

FAST = RetryConfig(max_attempts=3, initial_wait=0.001, max_wait=0.01)
REQ = LLMRequest(task="t", messages=[{"role": "user", "content": "q"}], schema_name="predicate")


class Scripted(Backend):
    """A backend whose `_call` replays a list: dicts/str are replies, exceptions are raised."""

    name = "scripted"

    def __init__(self, replies, **kw):
        super().__init__(retry=FAST, **kw)
        self.replies, self.calls = list(replies), []

    def _call(self, messages, schema, req):
        self.calls.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply, Usage(10, 2)


def test_usage_addition():
    total = Usage(1, 2, 0.5) + Usage(3, 4, 0.25, usd_known=False)
    assert total == Usage(4, 6, 0.75, False) and total.total_tokens == 10


@pytest.mark.parametrize(
    "rest, expected",
    [
        ("http://127.0.0.1:8080/v1:smollm", ("http://127.0.0.1:8080/v1", "smollm")),
        ("http://localhost:11434/v1:llama3:8b", ("http://localhost:11434/v1", "llama3:8b")),
        ("https://api.example.com/v1/:org/model-x", ("https://api.example.com/v1", "org/model-x")),
        ("http://myhost:qwen", ("http://myhost", "qwen")),
    ],
)
def test_parse_compatible(rest, expected):
    assert parse_compatible(rest) == expected


@pytest.mark.parametrize("spec", ["gpt-4o", "openai", "openai:", "hf:", "openai-compatible:smollm", "vllm:x"])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(ConfigError, match="openai-compatible:BASE_URL:MODEL"):
        make_backend(spec)


def test_default_is_offline_unless_env(monkeypatch):
    made = []
    fake = types.ModuleType("sage.llm.offline")
    fake.OfflineExplainer = lambda **kw: made.append(kw) or "offline-backend"
    monkeypatch.setitem(sys.modules, "sage.llm.offline", fake)
    monkeypatch.delenv("SAGE_EXPLAINER", raising=False)
    assert make_backend() == "offline-backend" and make_backend(None) == "offline-backend"
    monkeypatch.setenv("SAGE_EXPLAINER", "nonsense")
    with pytest.raises(ConfigError, match="nonsense"):
        make_backend()


def test_price_lookup_snapshots_and_overrides(tmp_path, monkeypatch):
    table = PriceTable()
    assert table.lookup("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert table.lookup("claude-haiku-4-5-20251001") == (1.00, 5.00)
    assert table.lookup("gpt-4o-realtime-preview") is None  # a variant is not its base model
    assert table.usd(None, 10**6, 10**6) == 0.0  # local
    assert table.usd("gpt-4o", 10**6, 10**6) == pytest.approx(12.5)
    assert table.usd("brand-new-model", 1, 1) is None
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o": {"input": 1, "output": 2}, "brand-new-model": [3, 4]}))
    monkeypatch.setenv("SAGE_PRICES", str(prices))
    table = PriceTable({"gpt-4o": {"input": 5, "output": 6}})  # the argument beats the file
    assert table.lookup("gpt-4o") == (5, 6) and table.lookup("brand-new-model") == (3, 4)
    prices.write_text('{"gpt-4o": {"input": 1}}')
    with pytest.raises(ConfigError, match="bad price for 'gpt-4o'"):
        PriceTable()
    monkeypatch.setenv("SAGE_PRICES", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="SAGE_PRICES"):
        PriceTable()


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"a": {"b": [1, 2]}}\n```\nDone.', {"a": {"b": [1, 2]}}),
        ('The answer is {"a": "}"} as requested', {"a": "}"}),
        ('{bad} then {"a": 2}', {"a": 2}),
    ],
)
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    "text, why",
    [("no json here", "no JSON object"), ('{"a": 1', "not valid JSON"), ("[1, 2]", "no JSON object")],
)
def test_extract_json_failures(text, why):
    with pytest.raises(ValueError, match=why):
        extract_json(text)


def test_bundled_schemas_are_self_contained():
    for name in ("predicate", "explanation"):
        schema = bundled_schema(name)
        Draft202012Validator.check_schema(schema)
        refs = [r for r in json.dumps(schema).split('"$ref": ')[1:]]
        assert refs and all(r.startswith('"#') for r in refs)
    pred = {"type": "and", "all": [{"type": "not", "arg": {"type": "structural", "property": "digit"}}]}
    assert Draft202012Validator(bundled_schema("predicate")).is_valid(pred)
    assert not Draft202012Validator(bundled_schema("predicate")).is_valid(
        {"type": "and", "all": [{"type": "x"}]}
    )


def test_retry_then_success_and_retry_after_is_capped():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("429", retry_after=1000.0)  # capped by max_wait, so the test stays fast
        return "done"

    assert call_with_retries(flaky, FAST, "x") == "done" and len(attempts) == 3
    with pytest.raises(ExplainerError, match=r"x: boom \(gave up after 3 attempts\)"):
        call_with_retries(lambda: (_ for _ in ()).throw(TransientError("boom")), FAST, "x")


def test_complete_reasks_then_succeeds_with_dict_replies():
    b = Scripted(
        [
            TransientError("503"),
            {"type": "token_set"},
            {"type": "digit"},
            {"type": "structural", "property": "digit"},
        ],
        max_schema_retries=2,
    )
    resp = b.complete(REQ)
    assert resp.data == {"type": "structural", "property": "digit"} and resp.attempts == 3
    assert resp.usage == Usage(30, 6, 0.0, True) and b.total_usage == resp.usage
    assert len(b.calls) == 4 and len(b.calls[-1]) == 5  # user + 2 x (assistant reply, user error)
    assert REQ.messages == [{"role": "user", "content": "q"}]  # the request itself is untouched


def test_complete_fatal_error_keeps_usage_spent():
    b = Scripted(["not json", ExplainerError("scripted: invalid API key")])
    with pytest.raises(ExplainerCallError, match="invalid API key") as info:
        b.complete(REQ)
    assert info.value.usage == Usage(10, 2) and info.value.attempts == 1


def test_top_logprobs_default_is_not_implemented():
    with pytest.raises(NotImplementedError, match="scripted"):
        Scripted([]).top_logprobs([{"role": "user", "content": "x"}])
