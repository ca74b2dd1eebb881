"""Hook mapping for each supported architecture and hook type, checked against the real module outputs."""

import pytest
import torch

from sage.errors import ConfigError
from sage.model.capture import HookCapture
from sage.model.hooks import resolve_hook

ARCHS = ["llama", "mistral", "qwen2", "gemma2", "gpt2"]


@pytest.fixture(scope="module", params=ARCHS)
def arch_model(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from tests.fixtures import build_model

    out = tmp_path_factory.mktemp(request.param)
    build_model(out, request.param, n_layers=3, d_model=32)
    return request.param, AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()


@pytest.mark.parametrize("kind", ["hook_resid_pre", "hook_resid_post", "hook_mlp_out", "hook_attn_out"])
def test_hook_reads_the_right_tensor(arch_model, kind):
    name, model = arch_model
    site = resolve_hook(model, f"blocks.1.{kind}")
    ids = torch.randint(5, 300, (2, 7))
    got = HookCapture(model, site)(ids)
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    if kind == "hook_resid_pre":  # hidden_states[i] is the input of block i
        torch.testing.assert_close(got, out.hidden_states[1])
    elif kind == "hook_resid_post":
        torch.testing.assert_close(got, out.hidden_states[2])
    else:
        # resid_post = resid_pre + attn_out + mlp_out in every listed architecture (Gemma-2's post-norms too)
        attn = HookCapture(model, resolve_hook(model, "blocks.1.hook_attn_out"))(ids)
        mlp = HookCapture(model, resolve_hook(model, "blocks.1.hook_mlp_out"))(ids)
        torch.testing.assert_close(
            out.hidden_states[1] + attn + mlp, out.hidden_states[2], rtol=1e-4, atol=1e-4
        )
        assert got.shape == out.hidden_states[2].shape


def test_hf_hook_name_fallback_and_errors(arch_model):
    name, model = arch_model
    prefix = "transformer.h" if name == "gpt2" else "model.layers"
    site = resolve_hook(model, None, f"{prefix}.2")
    assert site.read == "output" and site.layer == 2
    with pytest.raises(ConfigError, match="layer 9"):
        resolve_hook(model, "blocks.9.hook_resid_post")
    with pytest.raises(ConfigError, match="unknown hook"):
        resolve_hook(model, "blocks.1.hook_z")
