"""Steering hooks and generation on the tiny fixture model."""

import pytest
import torch

from sage.errors import ConfigError
from sage.intervention import math as sm
from sage.intervention.edits import (
    FeatureEditor,
    GenerationConfig,
    PositionalEdit,
    SteerSpec,
    generate_ids,
    prompt_ids,
    residual_hook,
    steer,
    sweep,
)


def _hook_count(subject) -> int:
    module = dict(subject.model.named_modules())[subject.site.module_name]
    return len(module._forward_hooks) + len(module._forward_pre_hooks)


def test_hook_removed_after_generation_even_on_error(tiny_subject):
    before = _hook_count(tiny_subject)

    def boom(h):
        raise RuntimeError("edit failed")

    with pytest.raises(RuntimeError, match="edit failed"), residual_hook(tiny_subject, boom):
        assert _hook_count(tiny_subject) == before + 1
        ids = torch.tensor([[0, 5, 6]], device=tiny_subject.device)
        tiny_subject.model.generate(ids, max_new_tokens=3, do_sample=False)
    assert _hook_count(tiny_subject) == before

    spec = SteerSpec((3,), "clamp", 2.0, (1.0,))
    steer(tiny_subject, "The cat sat", spec, GenerationConfig(max_new_tokens=4, temperature=0))
    assert _hook_count(tiny_subject) == before


def test_positional_edit_follows_kv_cache_chunks():
    seen = []
    edit = PositionalEdit(lambda x: x + 1.0, "generated", prompt_len=5)
    prefill = torch.zeros(1, 5, 2)
    out = edit(prefill)
    assert (
        out[0, :4].eq(0).all() and out[0, 4].eq(1).all()
    )  # only the last prompt position predicts a new token
    for _ in range(3):  # then one position per call
        seen.append(edit(torch.zeros(1, 1, 2)))
    assert all(s.eq(1).all() for s in seen)
    assert edit.hooked_positions == 4

    edit_all = PositionalEdit(lambda x: x + 1.0, "all", prompt_len=5)
    out = edit_all(torch.zeros(1, 5, 2))
    assert out[0, 0].eq(0).all() and out[0, 1:].eq(1).all()  # never the sink at position 0


def test_positional_edit_keeps_bf16_values_exactly():
    h = torch.randn(1, 4, 3).to(torch.bfloat16)
    out = PositionalEdit(lambda x: x * 2, "generated", prompt_len=4)(h)
    assert torch.equal(out[0, :3], h[0, :3])
    assert torch.equal(out[0, 3], (h[0, 3].float() * 2).to(torch.bfloat16))


def test_zero_strength_add_reproduces_unsteered_text(tiny_subject):
    spec = SteerSpec((3,), "add", 0.0, (1.0,))
    res = steer(
        tiny_subject, "Once upon a time", spec, GenerationConfig(max_new_tokens=6, seed=3, temperature=0.9)
    )
    assert res.steered.token_ids == res.unsteered.token_ids
    assert res.steered.hooked_positions > 0
    d = res.to_dict()
    assert set(d["steered"]) >= {"text", "feature_mean_activation", "perplexity"}


def test_strong_add_changes_generation_and_measures(tiny_subject):
    spec = SteerSpec((3,), "add", 40.0, (1.0,), positions="generated")
    res = steer(tiny_subject, "Once upon a time", spec, GenerationConfig(max_new_tokens=6, temperature=0))
    assert res.steered.token_ids != res.unsteered.token_ids
    for g in (res.unsteered, res.steered):
        if g.token_ids:
            assert g.perplexity > 1.0
            assert g.feature_acts[3] is not None and g.feature_acts[3] >= 0


def test_feature_editor_strategies_on_the_sae(tiny_subject):
    sae = tiny_subject.sae
    x = torch.randn(3, sae.cfg.d_in, device=tiny_subject.device) * 2
    codes = sae.encode(x)
    clamp = FeatureEditor(sae, SteerSpec((7,), "clamp", 3.0, (2.0,)))(x)
    assert torch.allclose(clamp - x, (6.0 - codes[:, 7:8]) * sae.W_dec[7], atol=1e-4)
    editor = FeatureEditor(sae, SteerSpec((7,), "amplify", 3.0, (2.0,)))
    amp = editor(x)
    assert torch.allclose(amp.norm(dim=-1), x.norm(dim=-1), rtol=1e-4)
    # the pre-activation is read before the SAE's activation function
    pre = (x - sae.b_dec) @ sae.W_enc[:, 7] + sae.b_enc[7]
    assert torch.allclose(editor.pre_acts(x, [7])[:, 0], pre, atol=1e-5)
    expected = torch.stack(
        [xi if p >= 6.0 else sm.rescale_to_norm(xi + 6.0 * sae.W_dec[7], xi) for xi, p in zip(x, pre)]
    )
    assert torch.allclose(amp, expected, atol=1e-4)
    cal_spec = SteerSpec((7,), "calibrate", 3.0, (2.0,), triggers=(1,), threshold=1e9)
    assert torch.equal(FeatureEditor(sae, cal_spec)(x), x)  # no trigger that high: untouched


def test_sweep_reports_each_strength(tiny_subject):
    spec = SteerSpec((3, 4), "amplify", 1.0, (1.0, 2.0))
    res = sweep(
        tiny_subject, "The dog ran", spec, [0.5, 2.0], GenerationConfig(max_new_tokens=3), progress=False
    )
    assert [s for s, _ in res.rows] == [0.5, 2.0]
    assert res.to_dict()["sweep"][1]["strength"] == 2.0


def test_bad_specs_are_config_errors(tiny_subject):
    with pytest.raises(ConfigError):
        SteerSpec((3,), "boost", 1.0, (1.0,))
    with pytest.raises(ConfigError):
        SteerSpec((3,), "add", 1.0, (0.0,))
    with pytest.raises(ConfigError):
        SteerSpec((3, 3), "add", 1.0, (1.0, 1.0))
    with pytest.raises(ConfigError, match="out of range"):
        steer(tiny_subject, "x", SteerSpec((10_000,), "add", 1.0, (1.0,)))
    with pytest.raises(ConfigError):
        prompt_ids(tiny_subject, "  ")


def test_generate_is_seeded(tiny_subject):
    ids = prompt_ids(tiny_subject, "In 1999, the city")
    gen = GenerationConfig(max_new_tokens=5, seed=11, temperature=1.0)
    assert generate_ids(tiny_subject, ids, gen)[0] == generate_ids(tiny_subject, ids, gen)[0]
