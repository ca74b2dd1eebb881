"""hf: backend plumbing on the tiny fixture chat model, and (integration) on the embedded SmolLM2."""

import time

import pytest
import torch

from sage.errors import ConfigError
from sage.llm import ExplainerCallError, LLMRequest, make_backend
from sage.llm.hf_backend import with_schema

REQ = LLMRequest(
    task="predicate",
    schema_name="predicate",
    max_tokens=24,
    messages=[
        {"role": "system", "content": "You write token predicates as JSON."},
        {
            "role": "user",
            "content": (
                'Give a predicate matching digit tokens, e.g. {"type": "structural", "property": "digit"}.'
            ),
        },
    ],
)


def valid_or_clear_failure(backend, req=REQ):
    """A run must end in schema-valid output or in a clear validation failure, never anything else."""
    n = backend.max_schema_retries + 1
    try:
        resp = backend.complete(req)
    except ExplainerCallError as exc:
        assert f"no valid predicate output after {n} attempts" in str(exc)
        assert (
            exc.attempts == n
            and exc.usage.input_tokens > 0
            and 0 < exc.usage.output_tokens <= n * req.max_tokens
        )
        return None
    assert resp.data["type"] and 1 <= resp.attempts <= n and resp.usage.usd == 0.0
    return resp


def test_schema_goes_into_the_system_message():
    msgs = with_schema(REQ.messages, {"type": "object"})
    assert (
        msgs[0]["content"].startswith("You write token predicates")
        and '{"type":"object"}' in msgs[0]["content"]
    )
    assert with_schema([{"role": "user", "content": "x"}], {})[0]["role"] == "system"
    assert REQ.messages[0]["content"] == "You write token predicates as JSON."


def test_hf_tiny_model_plumbing(tiny_model_dir):
    backend = make_backend(f"hf:{tiny_model_dir}")
    assert backend.name == f"hf:{tiny_model_dir}" and backend.price_model is None
    valid_or_clear_failure(backend)


def test_hf_top_logprobs_match_a_forward_pass(tiny_model_dir):
    backend = make_backend(f"hf:{tiny_model_dir}")
    messages = [{"role": "user", "content": "The cat sat"}]
    (first,) = backend.top_logprobs(messages, n=5)
    ids = backend.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.no_grad():
        expected = torch.log_softmax(backend.model(ids).logits[0, -1].float(), -1).topk(5)
    assert len(first) <= 5 and max(first.values()) == pytest.approx(expected.values[0].item(), abs=1e-5)
    assert backend.tokenizer.decode([expected.indices[0].item()]) in first
    assert len(backend.top_logprobs(messages, n=3, max_tokens=2)) == 2


def test_hf_model_without_chat_template_is_rejected(tiny_model_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    tok = AutoTokenizer.from_pretrained(plain)
    tok.chat_template = None
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    tok.save_pretrained(plain)
    with pytest.raises(ConfigError, match="no chat template"):
        make_backend(f"hf:{plain}")
    with pytest.raises(ConfigError, match="cannot load"):
        make_backend(f"hf:{tmp_path / 'nowhere'}")


@pytest.mark.integration
def test_hf_default_smollm2():
    """The embedded SmolLM2-135M-Instruct as the chat model: too weak to explain well, but real.
    Kept small (2 attempts x 16 tokens); wall time is printed, not asserted (this machine is shared)."""
    start = time.perf_counter()
    backend = make_backend("hf:default", max_schema_retries=1)
    resp = valid_or_clear_failure(backend, LLMRequest(REQ.task, REQ.messages, REQ.schema_name, max_tokens=16))
    print(
        f"hf:default -> {'valid ' + str(resp.data) if resp else 'clear failure'} "
        f"in {time.perf_counter() - start:.1f}s, usage {backend.total_usage}"
    )
