"""Activation engine: early exit, padding, sink handling, feature subsets, bad input."""

import pytest
import torch

from sage.errors import ConfigError
from sage.model.engine import ActivationEngine
from tests.fixtures import TEST_DEVICE, TEXTS


def test_early_exit_matches_full_forward(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    ids, mask = eng.pad(eng.tokenize(TEXTS[:3]))
    dev = tiny_subject.device
    with torch.no_grad():
        full = tiny_subject.model(
            input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=True
        ).hidden_states
    layer = tiny_subject.site.layer
    torch.testing.assert_close(eng.hidden(ids, mask), full[layer + 1])
    ref = tiny_subject.sae.encode(full[layer + 1]) * mask.to(dev).unsqueeze(-1)
    ref[:, 0] = 0.0  # the sink position is never reported
    torch.testing.assert_close(eng.feature_acts(ids, mask), ref)


def test_massive_activation_tokens_are_treated_as_sinks(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    ids, mask = eng.pad(eng.tokenize(TEXTS[:2]))
    h = eng.hidden(ids, mask).clone()
    h[0, 3] *= 1000.0  # a massive activation, far above max_norm_ratio x the typical norm
    sinks = eng.sink_mask(h)
    assert sinks[:, 0].all() and sinks[0, 3] and sinks.sum() == 3
    assert tiny_subject.massive_norm > 0


def test_padding_does_not_change_activations(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    alone = [eng.run([t])[0].dense() for t in TEXTS]
    batched = eng.run(TEXTS)  # different lengths -> padding
    for a, b in zip(alone, batched):
        torch.testing.assert_close(a, b.dense(), rtol=1e-5, atol=1e-5)


def test_sink_token_and_feature_subset(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    ta = eng.run(["The cat sat on the mat."], [3, 7])[0]
    assert ta.token_ids[0] == tiny_subject.sink_id
    assert ta.acts.shape == (len(ta.tokens), 2)
    full = eng.run(["The cat sat on the mat."])[0]
    assert full.acts is None and full.sparse.k == tiny_subject.sae.cfg.k  # all features: kept sparse
    torch.testing.assert_close(ta.column(7), full.column(7))
    torch.testing.assert_close(ta.acts, full.dense()[:, [3, 7]])
    assert ta.acts.device.type == full.sparse.values.device.type == "cpu"  # results leave the device
    assert ta.to_dict(3)["sink_positions"] == [0]


def test_unknown_feature_is_a_clear_error(tiny_subject):
    with pytest.raises(ConfigError, match=r"features 0-127"):
        ActivationEngine(tiny_subject).run(["hi"], [128])


def test_sae_width_mismatch_is_reported(tiny_model_dir, tmp_path):
    from sage.model.subject import load_subject
    from tests.fixtures import build_sae

    build_sae(tmp_path / "wide", d_in=48)
    with pytest.raises(ConfigError, match="width 48"):
        load_subject(str(tiny_model_dir), str(tmp_path / "wide"), dtype="float32", device=TEST_DEVICE)


def test_sparse_activations_equal_the_dense_encoding(tiny_subject):
    eng = ActivationEngine(tiny_subject)
    ids, mask = eng.pad(eng.tokenize(TEXTS))
    h = eng.hidden(ids, mask)
    dense = eng.encode(h)
    sparse = eng.encode_sparse(h)
    assert sparse.indices.shape == (*ids.shape, tiny_subject.sae.cfg.k)
    torch.testing.assert_close(sparse.to_dense(), dense)
    torch.testing.assert_close(sparse.columns([5, 0, 77]), dense[..., [5, 0, 77]])


def test_dense_sae_is_cut_to_its_active_features_without_loss(tiny_subject):
    """A ReLU-style SAE (no TopK activation) goes through the dense path and `sparsify`."""
    from sage.model.sparse import sparsify

    dense = torch.relu(torch.randn(3, 5, 40))
    dense[0, 0] = torch.arange(40.0)  # one position with 39 active features
    sparse = sparsify(dense)
    assert sparse.k == 39
    torch.testing.assert_close(sparse.to_dense(), dense)


def test_token_strings_equal_one_decode_per_token(tiny_subject):
    tok = tiny_subject.tokenizer
    ids = ActivationEngine(tiny_subject).tokenize(TEXTS)[1]
    assert tiny_subject.token_strings(ids) == [tok.decode([i]) for i in ids]
    assert tiny_subject.token_strings(ids[::-1]) == [tok.decode([i]) for i in ids[::-1]]  # from the cache
