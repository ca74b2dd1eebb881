"""Steering arithmetic on small hand-made tensors (no model)."""

import math

import pytest
import torch

from sage.intervention import math as sm


def _linear_sae(d: int = 6, F: int = 6, seed: int = 0):
    """A tied SAE with orthonormal decoder rows and ReLU encoder: encode(decode(c)) == c for c >= 0."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    W_dec = q[:F]  # [F, d], orthonormal rows
    b_dec = torch.randn(d, generator=g) * 0.1

    def encode(x):
        return torch.relu((x - b_dec) @ W_dec.T)

    def decode(c):
        return c @ W_dec + b_dec

    return W_dec, encode, decode


def test_add_edit_moves_along_unit_decoder_direction():
    x = torch.randn(2, 3, 4)
    dirs = torch.tensor([[3.0, 0, 0, 0], [0, 0, 0, 0]])  # second feature: zero decoder row
    out = sm.add_edit(x, dirs, torch.tensor([2.5, 7.0]))
    assert torch.allclose(out - x, torch.tensor([2.5, 0, 0, 0]).expand_as(x))


def test_clamp_changes_only_the_clamped_feature():
    W_dec, encode, decode = _linear_sae()
    c = torch.tensor([[0.5, 0.0, 1.2, 0.3, 0.0, 2.0], [0.0, 0.7, 0.3, 0.0, 0.1, 0.4]])
    x = decode(c) + 0.01 * torch.randn(2, 6)  # plus an SAE error the edit must keep
    codes = encode(x)
    out = sm.clamp_edit(x, codes, decode, [2], torch.tensor([5.0]))
    # the residual moves only along W_dec[2], by (5 - old code)
    assert torch.allclose(out - x, (5.0 - codes[:, 2:3]) * W_dec[2], atol=1e-5)
    new_codes = encode(out)
    others = [i for i in range(6) if i != 2]
    assert torch.allclose(new_codes[:, others], codes[:, others], atol=1e-5)
    assert torch.allclose(new_codes[:, 2], torch.tensor([5.0, 5.0]), atol=1e-5)


def test_amplify_splits_one_magnitude_by_shortfall_as_released():
    # hand-computed: m = 2, pre-activations (1, 3, -1) -> relu -> (1, 3, 0); shortfall (1, 0, 2),
    # shares (1/3, 0, 2/3): x' = x + 2 * (1/3 e0 + 2/3 e2), then rescaled to |x|
    x = torch.tensor([[3.0, 4.0, 0.0]])
    dec = torch.eye(3)
    pre = torch.tensor([[1.0, 3.0, -1.0]])
    raw = x + 2.0 * torch.tensor([[1 / 3, 0.0, 2 / 3]])
    expected = raw * (5.0 / raw.norm())
    out = sm.amplify_edit(x, pre, dec, 2.0)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out.norm(), torch.tensor(5.0))
    # a set of two identical features gets the same total push as one (not twice the push)
    one = sm.amplify_edit(x, torch.tensor([[0.0]]), torch.eye(3)[:1], 2.0)
    two = sm.amplify_edit(x, torch.tensor([[0.0, 0.0]]), torch.eye(3)[[0, 0]], 2.0)
    assert torch.allclose(one, two, atol=1e-6)


def test_amplify_without_shortfall_is_identity():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    out = sm.amplify_edit(x, torch.tensor([[5.0], [9.0]]), torch.tensor([[1.0, 0.0]]), 2.0)
    assert torch.equal(out, x)  # the reference would write NaN (0/0); here: unchanged
    zero = sm.amplify_edit(torch.zeros(1, 2), torch.zeros(1, 1), torch.tensor([[1.0, 0.0]]), 1.0)
    assert torch.isfinite(zero).all()


def test_shortfall_reads_pre_activations():
    pre = torch.tensor([[1.0, 3.0, -2.0]])
    assert torch.equal(sm.shortfall(pre, 2.0), torch.tensor([[1.0, 0.0, 2.0]]))


def test_calibrate_gates_the_whole_chunk_on_the_trigger_group():
    x = torch.randn(1, 4, 3)
    pre = torch.zeros(1, 4, 1)
    dec = torch.tensor([[0.0, 0.0, 1.0]])
    # positive trigger pre-activations 0.3 and 0.5: mean 0.4
    trig = torch.tensor([[[0.0], [0.3], [-1.0], [0.5]]])
    closed = sm.calibrate_edit(x, trig, pre, dec, magnitude=2.0, cond_val=0.41)
    assert torch.equal(closed, x)  # mean 0.4 < 0.41: nothing edited, not even where a trigger fires
    opened = sm.calibrate_edit(x, trig, pre, dec, magnitude=2.0, cond_val=0.4)
    assert torch.allclose(opened, sm.amplify_edit(x, pre, dec, 2.0))  # every position, also the silent ones
    assert not sm.chunk_gate(torch.tensor([[-1.0], [0.0]]), 0.0)  # nothing positive: closed


def test_token_confidence_matches_hand_computation():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]))
    assert torch.allclose(sm.token_confidence(logits, 1), -torch.log(torch.tensor([0.5, 0.9])))
    c2 = -(math.log(0.5) + math.log(0.3)) / 2
    assert sm.token_confidence(logits, 2)[0].item() == pytest.approx(c2, rel=1e-6)
    assert torch.equal(sm.delta_token_confidence(logits, logits, 1), torch.zeros(2))
    assert sm.delta_token_confidence(logits[1:], logits[:1], 1).item() == pytest.approx(
        math.log(0.5) - math.log(0.9)
    )
    with pytest.raises(ValueError):
        sm.token_confidence(logits, 0)


def test_dtc_sign_on_a_known_case():
    # 30 tokens. Base: flat. Intervention: one token takes 0.9, the rest share 0.1. The intervention
    # made the model surer of its next token, so its dTC must be positive at the default k = 20
    # (DeepConf's), and ranks first under --direction up. C_20 by hand:
    flat = torch.zeros(1, 30)
    probs = torch.full((1, 30), 0.1 / 29)
    probs[0, 0] = 0.9
    peaked = probs.log()
    c_peaked = -(math.log(0.9) + 19 * math.log(0.1 / 29)) / 20
    assert sm.token_confidence(peaked).item() == pytest.approx(c_peaked, rel=1e-5)
    assert sm.token_confidence(flat).item() == pytest.approx(math.log(30), rel=1e-6)
    assert sm.delta_token_confidence(peaked, flat).item() == pytest.approx(c_peaked - math.log(30), rel=1e-5)
    assert sm.delta_token_confidence(peaked, flat).item() > 0
    # with k = 1 the same case comes out negative: C_1 is a surprisal (why the default is not 1)
    assert sm.delta_token_confidence(peaked, flat, 1).item() < 0


def test_perplexity_of_uniform_logits_is_vocab_size():
    assert sm.perplexity(torch.zeros(4, 7), torch.tensor([0, 3, 6, 2])) == pytest.approx(7.0)
    assert math.isnan(sm.perplexity(torch.zeros(0, 7), torch.zeros(0, dtype=torch.long)))
