"""Steering arithmetic on small hand-made tensors (no model)."""

import math

import pytest
import torch

from sage.steering import math as sm


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


def test_amplify_keeps_the_norm_and_raises_short_features():
    W_dec, encode, decode = _linear_sae()
    x = torch.randn(5, 6) * 3
    codes = encode(x)
    targets = torch.tensor([4.0, 4.0])
    out = sm.amplify_edit(x, codes, decode, [1, 3], targets)
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-5)
    short = (codes[:, [1, 3]] < targets).any(-1)
    assert short.any()
    # at positions that fell short, the steered features now carry a larger share of the vector
    share_before = codes[short][:, [1, 3]].sum(-1) / x[short].norm(dim=-1)
    share_after = encode(out)[short][:, [1, 3]].sum(-1) / out[short].norm(dim=-1)
    assert (share_after > share_before).all()


def test_amplify_without_shortfall_is_identity():
    W_dec, encode, decode = _linear_sae()
    c = torch.tensor([[0.0, 9.0, 0.0, 8.0, 0.0, 0.0]])
    x = decode(c)
    out = sm.amplify_edit(x, encode(x), decode, [1, 3], torch.tensor([2.0, 2.0]))
    assert torch.equal(out, x)
    zero = torch.zeros(1, 6)  # a zero residual with nothing to raise: no 0/0
    out0 = sm.amplify_edit(zero, torch.zeros(1, 6), decode, [1], torch.tensor([0.0]))
    assert torch.equal(out0, zero)


def test_amplify_zero_vector_with_shortfall_has_no_nan():
    _, _, decode = _linear_sae()
    out = sm.amplify_edit(torch.zeros(1, 6), torch.zeros(1, 6), decode, [0], torch.tensor([1.0]))
    assert torch.isfinite(out).all()


def test_shortfall_is_proportional_and_clipped():
    codes = torch.tensor([[1.0, 3.0, 0.0]])
    assert torch.equal(
        sm.shortfall(codes, [0, 1, 2], torch.tensor([2.0, 2.0, 2.0])), torch.tensor([[1.0, 0.0, 2.0]])
    )


def test_calibrate_leaves_inactive_positions_untouched():
    x = torch.randn(2, 4, 3)
    edited = x + 10.0
    triggers = torch.tensor(
        [[[0.0, 0.1], [0.6, 0.0], [0.0, 0.0], [0.5, 0.9]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.51], [0.2, 0.3]]]
    )
    out = sm.calibrate_edit(x, edited, triggers, threshold=0.5)
    active = torch.tensor([[False, True, False, True], [False, False, True, False]])
    assert torch.equal(out[active], edited[active])
    assert torch.equal(out[~active], x[~active])


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


def test_perplexity_of_uniform_logits_is_vocab_size():
    assert sm.perplexity(torch.zeros(4, 7), torch.tensor([0, 3, 6, 2])) == pytest.approx(7.0)
    assert math.isnan(sm.perplexity(torch.zeros(0, 7), torch.zeros(0, dtype=torch.long)))
