"""MI vocabulary math on hand-made tensors (no model)."""

import math

import pytest
import torch

from sage.vocab.math import (
    explanation_stats,
    feature_logsumexp,
    logit_lens_top,
    mean_token_embeddings,
    mi_rank,
    reference_stats,
    unit_rows,
)


def test_mi_ranking_matches_hand_computation():
    # Two features along the axes; word 0 belongs to feature 0, word 1 to feature 1,
    # word 2 is shared equally.
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    emb = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    idx, val = mi_rank(dirs, emb, alpha=1.0, beta=1.0, keep=3, chunk=1)

    # Feature 0: s = [2, 0, 1].
    e = math.e
    p_w = [e**2 / (e**2 + 1 + e), 1 / (e**2 + 1 + e), e / (e**2 + 1 + e)]  # softmax over words
    p_c = [e**2 / (e**2 + 1), 1 / (1 + e), 0.5]  # softmax over the 2 features, per word
    expected = [p_w[i] * (math.log(p_c[i]) + math.log(2)) for i in range(3)]  # 0.3766, -0.0558, 0.0
    assert expected[0] == pytest.approx(0.37665, abs=1e-4)
    assert idx[0].tolist() == [0, 2, 1]
    assert val[0].tolist() == pytest.approx([expected[0], expected[2], expected[1]], abs=1e-6)
    # Feature 1 by symmetry of the shared word: its own word first, then the shared one.
    assert idx[1].tolist() == [1, 2, 0]


def test_mi_keeps_the_prior_term():
    # Without log p(c) the raw p(w|c) * log p(c|w) would rank word 1 (feature 1's word)
    # above the shared word 2 for feature 0; the MI score must not.
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    emb = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    raw = []
    for w in range(3):
        s = dirs @ emb[w]
        raw.append(torch.softmax(dirs[0] @ emb.T, 0)[w] * torch.log_softmax(s, 0)[0])
    assert sorted(range(3), key=lambda w: -raw[w]) == [0, 1, 2]
    idx, _ = mi_rank(dirs, emb, 1.0, 1.0, keep=3, chunk=2)
    assert idx[0].tolist() == [0, 2, 1]


def test_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(0)
    dirs = unit_rows(torch.randn(37, 8, generator=g))
    emb = torch.randn(23, 8, generator=g)
    lse_a = feature_logsumexp(dirs, emb, 0.3, chunk=5)
    lse_b = torch.logsumexp((dirs @ emb.T) / 0.3, dim=0)
    assert torch.allclose(lse_a, lse_b, atol=1e-5)
    i1, v1 = mi_rank(dirs, emb, 0.2, 0.3, keep=10, chunk=5)
    i2, v2 = mi_rank(dirs, emb, 0.2, 0.3, keep=10, chunk=37)
    assert torch.equal(i1, i2) and torch.allclose(v1, v2, atol=1e-6)
    j1, w1 = logit_lens_top(dirs, emb, keep=6, chunk=4, exclude=[0, 3])
    j2, w2 = logit_lens_top(dirs, emb, keep=6, chunk=100, exclude=[0, 3])
    assert torch.equal(j1, j2) and torch.allclose(w1, w2)
    assert not set(j1.flatten().tolist()) & {0, 3}
    assert torch.allclose(
        w1[:, 0],
        (dirs @ emb.T).masked_fill(torch.tensor([i in (0, 3) for i in range(23)]), -1e9).max(dim=1).values,
    )


def test_mean_token_embeddings_averages_rows():
    unembed = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    out = mean_token_embeddings(unembed, [[1], [2, 4], [0, 1, 5]])
    assert out.tolist() == [[2.0, 3.0], [6.0, 7.0], [4.0, 5.0]]
    with pytest.raises(ValueError):
        mean_token_embeddings(unembed, [[1], []])


def test_explanation_stats_hand_example():
    lists = [["house", "the", "garden"], ["house", "river", "mountain"], ["house", "garden", "xylophone"]]
    s = explanation_stats(lists, frequent={"the", "river"}, superficial_chars=4, dominate_share=0.5)
    assert s.diversity == pytest.approx(6 / 9)  # house the garden river mountain xylophone
    assert s.lexical == pytest.approx(2 / 9)  # "the", "river" (frequent); none shorter than 4 besides "the"
    assert s.dominate == pytest.approx(5 / 9)  # house in 3 lists, garden in 2 (> 1.5)
    assert (s.n_features, s.top) == (3, 3)
    short = explanation_stats([["ab", "abcd"]], frequent=set(), superficial_chars=4, dominate_share=0.1)
    assert short.lexical == 0.5 and short.dominate == 1.0  # 1 feature: every word is in > 10% of them


def test_reference_stats_hand_example():
    # the reference's definitions (MI_explainer.py): shares of the vocabulary, not of list slots
    vocab = ["house", "the", "garden", "river", "mountain", "xylophone", "cat", "ox"]
    lists = [["house", "the", "garden"], ["house", "river", "mountain"], ["house", "garden", "xylophone"]]
    s = reference_stats(lists, vocab, frequent={"the", "river"}, superficial_chars=4, dominate_share=0.5)
    # superficial vocabulary: the, river (frequent), cat, ox (short) -> 4; non-superficial: 4
    assert s.diversity == pytest.approx(4 / 4)  # house garden mountain xylophone listed
    assert s.lexical == pytest.approx(2 / 4)  # the, river listed; cat, ox never
    assert s.dominate == pytest.approx(2 / 6)  # house (3) and garden (2) > 0.5 x (3 - 1)
    assert s.total == pytest.approx(0.5) and s.vocabulary == 8


def test_reference_objective_is_the_released_codes():
    # The released code sorts p(w|c) * log p(c|w) (no prior): on the hand-made case above, feature 0
    # ranks the other feature's word 1 above the shared word 2, which our PMI objective does not.
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    emb = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    s = dirs @ emb.T
    expected = torch.softmax(s, 1) * torch.log_softmax(s, 0)
    idx, val = mi_rank(dirs, emb, 1.0, 1.0, keep=3, chunk=1, objective="reference")
    assert idx[0].tolist() == [0, 1, 2]
    assert val[0].tolist() == pytest.approx(expected[0][[0, 1, 2]].tolist(), abs=1e-6)
    assert all(v <= 0 for v in val.flatten().tolist())
    with pytest.raises(ValueError, match="unknown MI objective"):
        mi_rank(dirs, emb, 1.0, 1.0, keep=3, chunk=1, objective="nope")
