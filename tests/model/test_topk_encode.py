"""The sparse TopK encode: equal to sae-lens's encode in float32, within bf16 tolerance in bf16, and its
cast weights follow the SAE's."""

import copy

import pytest
import torch

from sage.model.engine import ActivationEngine
from sage.model.topk_encode import encoder_weights, shared_encoder_weights
from tests.fixtures import TEST_DEVICE, TEXTS


@pytest.fixture(scope="module")
def bf16_subject(tiny_model_dir, tiny_sae_dir):
    from sage.model.subject import load_subject

    return load_subject(str(tiny_model_dir), str(tiny_sae_dir), dtype="bfloat16", device=TEST_DEVICE)


def _hidden(engine):
    ids, mask = engine.pad(engine.tokenize(TEXTS))
    return engine.hidden(ids, mask)


def test_bf16_model_encodes_in_bf16_within_tolerance_of_float32(bf16_subject):
    eng = ActivationEngine(bf16_subject)
    h = _hidden(eng)
    assert h.dtype == torch.bfloat16
    fast = eng.encode_sparse(h).to_dense()
    ref = bf16_subject.sae.encode(h.float())  # sae-lens, float32
    assert (fast - ref).abs().max() > 1e-5  # the product really ran in bf16 (float32 differs by ~1e-7)
    assert bf16_subject.info()["encoder_dtype"] == "bfloat16"  # and results say so
    both = (fast > 0) & (ref > 0)
    assert ((fast > 0) ^ (ref > 0)).sum() <= 0.05 * (ref > 0).sum()  # near-ties at the k-th place
    torch.testing.assert_close(fast[both], ref[both], rtol=2e-2, atol=1e-3)


def test_float32_encoder_when_asked_equals_sae_lens(bf16_subject):
    eng = ActivationEngine(bf16_subject, bf16_encoder=False)
    h = _hidden(eng)
    torch.testing.assert_close(eng.encode_sparse(h).to_dense(), bf16_subject.sae.encode(h.float()))


def test_float32_model_keeps_the_float32_encoder(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    h = _hidden(eng)
    dense = eng.encode_sparse(h).to_dense()
    torch.testing.assert_close(dense, tiny_subject.sae.encode(h), rtol=1e-5, atol=1e-6)
    assert tiny_subject.info()["encoder_dtype"] == "float32"


def test_engines_of_one_sae_share_its_cast_weights(bf16_subject):
    sae = bf16_subject.sae
    first = shared_encoder_weights(sae, torch.bfloat16)
    for eng in (ActivationEngine(bf16_subject), ActivationEngine(bf16_subject)):
        eng.encode_sparse(_hidden(eng))
    assert shared_encoder_weights(sae, torch.bfloat16) is first
    assert shared_encoder_weights(sae, torch.float32) is shared_encoder_weights(sae, torch.float32)


def test_cast_weights_are_reused_until_the_sae_changes(tiny_subject):
    sae = copy.deepcopy(tiny_subject.sae)
    first = encoder_weights(sae, torch.bfloat16)
    assert encoder_weights(sae, torch.bfloat16, first) is first
    with torch.no_grad():
        sae.W_enc.mul_(2.0)  # an in-place update, as an optimizer step or load_state_dict makes
    second = encoder_weights(sae, torch.bfloat16, first)
    assert second is not first
    torch.testing.assert_close(second.W_enc, (sae.W_enc).to(torch.bfloat16))
    assert encoder_weights(sae, torch.float32, second).W_enc.dtype == torch.float32
