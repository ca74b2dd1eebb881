"""Delta Token Confidence and selection by explanation."""

import json

import pytest
import torch

from sage.errors import ConfigError
from sage.intervention import math as sm
from sage.intervention.edits import residual_hook
from sage.steering.select import (
    DTC,
    concept_score,
    dtc_scores,
    load_explanations,
    match_explanations,
    match_words,
    select_by_concept,
)
from tests.fixtures import TEST_DEVICE


@pytest.fixture()
def zero_row_subject(tiny_model_dir, tiny_sae_dir):
    from sage.model.subject import load_subject

    s = load_subject(str(tiny_model_dir), str(tiny_sae_dir), dtype="float32", device=TEST_DEVICE)
    with torch.no_grad():
        s.sae.W_dec[5].zero_()
    return s


def test_dtc_of_a_zero_feature_is_zero(zero_row_subject):
    scores = dtc_scores(zero_row_subject, [4, 5, 6, 7], progress=False)
    assert scores.features.tolist() == [4, 5, 6, 7]
    assert scores.dtc[1].item() == 0.0
    others = scores.dtc[[0, 2, 3]]
    assert (others.abs() > 1e-4).all()


def test_dtc_matches_a_direct_single_feature_computation(tiny_subject):
    f = 9
    scores = dtc_scores(tiny_subject, [f], progress=False)
    from sage.model.engine import ActivationEngine

    eng = ActivationEngine(tiny_subject)
    ids = torch.tensor([eng.tokenize([DTC.prefix])[0]], device=tiny_subject.device)
    codes = tiny_subject.sae.encode(eng.hidden(ids)[0, -1].float())
    edit = DTC.alpha * codes.max() * tiny_subject.sae.W_dec[f]

    def add_last(h):
        h = h.clone()
        h[:, -1] += edit
        return h

    with torch.no_grad():
        base = tiny_subject.model(input_ids=ids).logits[0, -1]
        with residual_hook(tiny_subject, add_last):
            inter = tiny_subject.model(input_ids=ids).logits[0, -1]
    expected = sm.delta_token_confidence(inter, base, DTC.k).item()
    assert scores.dtc[0].item() == pytest.approx(expected, abs=1e-4)
    assert scores.amplification == pytest.approx(DTC.alpha * codes.max().item(), rel=1e-5)


def test_dtc_batching_does_not_change_scores(tiny_subject):
    a = dtc_scores(tiny_subject, list(range(20)), batch_size=3, progress=False)
    b = dtc_scores(tiny_subject, list(range(20)), batch_size=64, progress=False)
    assert torch.allclose(a.dtc, b.dtc, atol=1e-4)
    full = dtc_scores(tiny_subject, batch_size=50, progress=False)
    assert full.features.numel() == tiny_subject.d_sae


def test_dtc_ranking_directions(tiny_subject):
    s = dtc_scores(tiny_subject, list(range(30)), progress=False)
    up, down = s.ranked(5, "up"), s.ranked(5, "down")
    assert s.dtc[up[0]] == s.dtc.max() and s.dtc[down[0]] == s.dtc.min()
    assert all(s.dtc[up[i]] >= s.dtc[up[i + 1]] for i in range(4))
    d = s.to_dict(5, "down", tiny_subject.tokenizer)
    assert [r["rank"] for r in d["features"]] == [1, 2, 3, 4, 5]
    with pytest.raises(ConfigError):
        s.ranked(3, "sideways")


def _write_results(path):
    lines = [
        {"feature": {"index": 11}, "labels": ["French cities"], "description": "Names of cities in France."},
        {"feature": {"index": 12}, "labels": ["numbers"], "description": "Digits and years such as 1999."},
        {"feature": {"index": 13}, "labels": ["capital cities"], "description": "European capitals."},
        {"feature": {"index": 14}, "error": "explainer timed out"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_selection_by_explanation(tmp_path):
    res = _write_results(tmp_path / "r.jsonl")
    assert len(load_explanations(res)) == 3
    matches = select_by_concept("French cities", results=res)
    assert [m.feature for m in matches] == [11, 13]
    assert matches[0].score == 1.0 and matches[1].score == 0.5
    assert match_explanations("years", load_explanations(res))[0].feature == 12  # via the description
    assert select_by_concept("zebra", results=res) == []


def test_concept_score_and_word_lists():
    assert concept_score("cats", ["cat"]) == 1.0
    assert concept_score("dog park", ["dogs"], "running in a park") == pytest.approx(0.75)
    assert concept_score("dog park", [], "park") == pytest.approx(0.25)
    m = match_words("ocean waves", {1: ["ocean", "sea"], 2: ["wave"], 3: ["car"]})
    assert [x.feature for x in m] == [1, 2]
    with pytest.raises(ConfigError):
        concept_score("the of", ["x"])


def test_bad_results_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"feature": {"index": 1}, "labels": ["a"]}\nnot json\n')
    with pytest.raises(ConfigError, match=":2"):
        load_explanations(bad)
    with pytest.raises(ConfigError):
        load_explanations(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError):
        select_by_concept("x")


def test_selection_by_mi_words(monkeypatch, tiny_subject):
    import sage.vocab.lookup

    class Tables:
        d_sae = 3
        rows = [[("ocean", 0.9), ("sea", 0.5)], [("car", 0.8)], [("waves", 0.7)]]

        def mi(self, f, n):
            return self.rows[f][:n]

    monkeypatch.setattr(sage.vocab.lookup, "vocab_tables", lambda subject: Tables())
    matches = select_by_concept("ocean waves", subject=tiny_subject, use_vocab=True)
    assert [(m.feature, m.source) for m in matches] == [(0, "mi-vocabulary"), (2, "mi-vocabulary")]
