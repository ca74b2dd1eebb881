"""Repaired definitions of the evaluation, each pinned on a hand-computed case (no model)."""

from types import SimpleNamespace

import pytest

from sage.evaluation.baselines import render_pairs, token_activation_pairs
from sage.evaluation.metrics import always_fires_scores, never_fires_scores, truth_from_counts
from sage.evaluation.report import markdown_table, summarize
from sage.llm.offline import _one_shot


def _ctx(tokens, acts):
    return SimpleNamespace(tokens=tokens, acts=acts)


def test_token_activation_pairs_scale_to_ten_and_drop_the_sink():
    pairs = token_activation_pairs(
        [_ctx(["<s>", " a", " b"], [9.0, 2.0, 4.0]), _ctx(["<s>", " c"], [0.0, 1.0])]
    )
    # the sink (activation 9) is not shown and does not set the scale; the largest shown is 4 -> 10
    assert pairs == [{"tokens": [" a", " b"], "acts": [5, 10]}, {"tokens": [" c"], "acts": [2]}]
    assert "' b'\t10" in render_pairs(pairs)


def test_offline_one_shot_names_the_peak_tokens():
    top = [
        {"tokens": [" quick", "ly"], "acts": [1, 10]},
        {"tokens": [" slow", "ly"], "acts": [0, 8]},
        {"tokens": [" the", " end"], "acts": [6, 2]},
    ]
    # 'ly' peaks two contexts, ' the' one: only tokens that peak >= 2 contexts are named
    assert _one_shot({"top": top}) == {
        "explanation": "Fires on the token 'ly'.",
        "predicate": {"type": "token_set", "tokens": ["ly"]},
    }
    # no token peaks twice: every peak token is named, most frequent first, then first seen
    assert _one_shot({"top": top[1:]})["predicate"]["tokens"] == ["ly", " the"]
    assert _one_shot({"top": [{"tokens": [" x"], "acts": [0]}]})["predicate"] is None


def test_never_fires_is_the_floor():
    s = never_fires_scores([True, True, False, False, False])
    assert (s["accuracy"], s["f1"], s["balanced_accuracy"]) == (0.6, 0.0, 0.5)


def test_always_fires_is_the_yes_reference():
    s = always_fires_scores([True, True, False, False, False])
    assert (s["accuracy"], s["f1"], s["balanced_accuracy"]) == (0.4, pytest.approx(4 / 7), 0.5)
    assert truth_from_counts({"tp": 1, "fp": 2, "tn": 3, "fn": 1}) == [True] * 2 + [False] * 5
    assert truth_from_counts({"tp": 1}) is None


def test_report_shows_what_saying_yes_scores():
    # feature 1: 2 firing, 2 silent items; feature 2: 1 firing, 3 silent. Method a's counts differ
    # from b's, the truth does not; b has no counts for feature 2 and a's are used
    det = {
        ("a", 1): {"tp": 1, "fp": 0, "tn": 2, "fn": 1},
        ("b", 1): {"tp": 2, "fp": 2, "tn": 0, "fn": 0},
        ("a", 2): {"tp": 0, "fp": 0, "tn": 3, "fn": 1},
    }
    records = []
    for m in ("a", "b"):
        for f in (1, 2):
            r = _rec(m, f, {"detection_f1": 0.5, "predictive_r_pooled": 0.1})
            if (m, f) in det:
                r["details"] = {"detection": det[(m, f)]}
            records.append(r)
    s = summarize(records, ["a", "b"], ["detection_f1", "predictive_r_pooled"])
    # always yes: F1 = 2P / (2P + N): 4/6 on feature 1, 2/5 on feature 2
    assert s["metrics"]["detection_f1"]["always_fires"] == pytest.approx((4 / 6 + 2 / 5) / 2)
    assert "always_fires" not in s["metrics"]["predictive_r_pooled"]
    assert 'answering "fires" to every item' in markdown_table(s)


def _rec(method, feature, metrics, failures=None, not_computed=None, error=None):
    r = {
        "method": method,
        "feature": feature,
        "scorer": "offline",
        "metrics": metrics,
        "failures": failures or {},
        "not_computed": not_computed or {},
    }
    if error:
        r["error"] = error
    return r


def test_summary_averages_every_method_over_the_same_features():
    # method b fails feature 2 (floored to 0): it is averaged over both features, not over its success
    records = [
        _rec("a", 1, {"predictive_r_pooled": 0.4}),
        _rec("a", 2, {"predictive_r_pooled": 0.2}),
        _rec("b", 1, {"predictive_r_pooled": 0.8}),
        _rec("b", 2, {"predictive_r_pooled": 0.0}, failures={"predictive": "no predicate"}, error="boom"),
    ]
    s = summarize(records, ["a", "b"], ["predictive_r_pooled"])
    b = s["metrics"]["predictive_r_pooled"]["methods"]["b"]
    assert b["mean"] == pytest.approx(0.4) and b["n"] == 2 and b["failures"] == 1
    assert b["failure_reasons"] == {"no predicate": 1}
    w = s["metrics"]["predictive_r_pooled"]["win_rates"]["b vs a"]
    assert (w["wins"], w["losses"], w["n"]) == (1, 1, 2)  # the failed pair counts
    assert s["failures"]["b"] == {"features": 1, "explanation_errors": 1}
    table = markdown_table(s)
    assert "0.400 [" in table and "(n=2, failed 1)" in table and "b 1 (1 errors)" in table


def test_left_out_metrics_stay_out_for_every_method():
    records = [
        _rec("a", 1, {"simulation_r": None}, not_computed={"simulation": "no log-probs"}),
        _rec("b", 1, {"simulation_r": None}, not_computed={"simulation": "no log-probs"}),
    ]
    s = summarize(records, ["a", "b"], ["simulation_r"])
    assert all(
        m["mean"] is None and m["failures"] == 0 for m in s["metrics"]["simulation_r"]["methods"].values()
    )
