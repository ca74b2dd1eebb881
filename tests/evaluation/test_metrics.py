"""Evaluation math on hand-made cases: perfect, anti-correlated and random predictions; empty data
is "not computed" (None), never 0."""

import math

import numpy as np
import pytest

from sage.evaluation.metrics import (
    bootstrap_ci,
    classification_scores,
    correlation_scores,
    digit_expected_value,
    generative_accuracy,
    mean_defined,
    paired_win_rate,
    pearson,
)
from sage.evaluation.scorers import simulated_values

ACTS = [[0.0, 2.0, 0.0, 1.0], [0.5, 0.0, 3.0]]


def test_pearson_perfect_anti_and_undefined():
    assert pearson([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(1.0)
    assert pearson([0, 1, 2, 3], [7, 5, 3, 1]) == pytest.approx(-1.0)
    assert pearson([0, 0, 0], [1, 2, 3]) is None  # a constant prediction has no correlation
    assert pearson([1], [1]) is None
    assert pearson([], []) is None
    with pytest.raises(ValueError):
        pearson([1, 2], [1, 2, 3])


def test_pearson_random_matches_numpy_and_is_small():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=2000), rng.normal(size=2000)
    r = pearson(x, y)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert abs(r) < 0.1


def test_correlation_scores_pooled_and_per_context():
    perfect = correlation_scores([[2 * a for a in c] for c in ACTS], ACTS)
    assert perfect["pooled"] == pytest.approx(1.0) and perfect["per_context"] == pytest.approx(1.0)
    anti = correlation_scores([[-a for a in c] for c in ACTS], ACTS)
    assert anti["pooled"] == pytest.approx(-1.0) and anti["per_context"] == pytest.approx(-1.0)
    # one context predicted constant: undefined there, so the per-context mean uses the other only
    mixed = correlation_scores([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 6.0]], ACTS)
    assert mixed["per_context"] == pytest.approx(1.0) and mixed["n_defined"] == 1 and mixed["n_contexts"] == 2
    flat_p, flat_a = [0, 0, 0, 0, 1, 0, 6], sum(ACTS, [])
    assert mixed["pooled"] == pytest.approx(np.corrcoef(flat_p, flat_a)[0, 1])
    empty = correlation_scores([], [])
    assert empty["pooled"] is None and empty["per_context"] is None
    silent = correlation_scores(
        [[0.0, 0.0]], [[0.0, 0.0]]
    )  # a feature that never fires: nothing to correlate
    assert silent["pooled"] is None and silent["per_context"] is None
    with pytest.raises(ValueError):
        correlation_scores([[1.0]], [[1.0, 2.0]])


def test_generative_accuracy():
    assert generative_accuracy([1.0, 0.6, 0.4, 0.0], reference=1.0) == 0.5  # 0.5 x reference = 0.5
    assert generative_accuracy([2.0, 2.0], reference=1.0) == 1.0
    assert generative_accuracy([0.0, 0.1], reference=1.0) == 0.0  # scored, and zero
    assert generative_accuracy([], reference=1.0) is None  # nothing generated: not computed
    assert generative_accuracy([1.0], reference=0.0) is None  # the feature never fires: not computed


def test_classification_perfect_inverted_random_and_degenerate():
    truth = [True, True, False, False, True, False]
    perfect = classification_scores(truth, truth)
    assert (perfect["accuracy"], perfect["f1"], perfect["balanced_accuracy"]) == (1.0, 1.0, 1.0)
    inverted = classification_scores([not t for t in truth], truth)
    assert (inverted["accuracy"], inverted["f1"], inverted["balanced_accuracy"]) == (0.0, 0.0, 0.0)
    always = classification_scores([True] * 6, truth)  # says "activating" to everything
    assert (
        always["accuracy"] == 0.5
        and always["balanced_accuracy"] == 0.5
        and always["f1"] == pytest.approx(2 / 3)
    )
    rng = np.random.default_rng(1)
    big_truth = list(rng.random(4000) < 0.5)
    rand = classification_scores(list(rng.random(4000) < 0.5), big_truth)
    assert abs(rand["balanced_accuracy"] - 0.5) < 0.05
    assert classification_scores([], [])["accuracy"] is None
    one_class = classification_scores([False, False], [False, False])
    assert one_class["accuracy"] == 1.0 and one_class["f1"] is None and one_class["balanced_accuracy"] is None
    with pytest.raises(ValueError):
        classification_scores([True], [True, False])


def test_digit_expected_value():
    assert digit_expected_value({"3": 0.0}) == pytest.approx(3.0)
    lp = {"0": math.log(0.5), " 10": math.log(0.25), "10": math.log(0.25), "hello": math.log(0.9)}
    assert digit_expected_value(lp) == pytest.approx(5.0)  # " 10" and "10" pool; words are ignored
    assert digit_expected_value({"2": math.log(0.1), "4": math.log(0.1)}) == pytest.approx(
        3.0
    )  # renormalised
    assert digit_expected_value({"11": 0.0, "07": 0.0, "x": 0.0}) is None
    assert digit_expected_value({}) is None


def test_simulated_values_parses_one_number_per_token():
    lp = math.log
    positions = [
        {"7": lp(0.5), "3": lp(0.5)},
        {"\n": 0.0},
        {"0": lp(0.9), "10": lp(0.1)},
        {"\n": 0.0},
        {"10": lp(0.8), "9": lp(0.2)},
    ]
    assert simulated_values(positions, 3) == pytest.approx([5.0, 1.0, 9.8])
    assert simulated_values(positions, 4) is None  # fewer numbers than tokens: not computed
    split_ten = [{"1": 0.0}, {"0": 0.0}, {"\n": 0.0}, {"4": 0.0}]  # "10" written as "1","0": one number
    assert simulated_values(split_ten, 2) == pytest.approx([1.0, 4.0])


def test_bootstrap_ci():
    assert bootstrap_ci([]) is None and bootstrap_ci([None, None]) is None
    assert bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    vals = list(np.random.default_rng(2).normal(0.5, 0.1, size=200))
    lo, hi = bootstrap_ci(vals + [None])
    assert lo < np.mean(vals) < hi and hi - lo < 0.05
    assert bootstrap_ci(vals, seed=3) == bootstrap_ci(vals, seed=3)


def test_paired_win_rate_and_mean():
    w = paired_win_rate([0.9, 0.5, 0.2, None, 0.4], [0.1, 0.5, 0.3, 0.8, None])
    assert (w["wins"], w["ties"], w["losses"], w["n"]) == (1, 1, 1, 3) and w["win_rate"] == pytest.approx(0.5)
    assert paired_win_rate([1.0, 1.0], [0.0, 0.0])["win_rate"] == 1.0
    assert paired_win_rate([0.0], [1.0])["win_rate"] == 0.0
    assert paired_win_rate([None], [1.0]) is None
    assert mean_defined([None, 1.0, 0.0]) == 0.5 and mean_defined([None]) is None
