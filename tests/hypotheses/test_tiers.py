"""The conclusion's strong tier (sage.hypotheses.tiers): SAGE's strong level and the demotion rule."""

import pytest

from sage.hypotheses.predicates import predicate_mask, predicate_values
from sage.hypotheses.tiers import STRONG_FRACTION, STRONG_TOP_N, demote_below, name_firing, strong_level

TOKENS = ["<s>", " well", " work", " good", " high", " the"]


def _occ(**means):
    return {t: {"n": 3, "active": 0, "mean": m} for t, m in means.items()}


def test_strong_level_is_half_the_mean_of_the_top_ten_maxima():
    maxima = [1.0, 0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.1, 0.0]
    assert strong_level(maxima) == pytest.approx(STRONG_FRACTION * sum(maxima[:STRONG_TOP_N]) / STRONG_TOP_N)
    assert strong_level(maxima) == pytest.approx(0.35)
    assert strong_level([]) == 0.0


def test_tested_tokens_below_the_level_move_to_the_weak_tier_and_the_mask_stays():
    pred = {"type": "token_set", "tokens": ["well", "work", "good", "high"], "weak": ["fine"]}
    occ = {**_occ(well=0.8, work=0.3, good=0.5), "high": {"n": 2, "active": 0, "mean": 0.1}}
    new, moved = demote_below(pred, occ, level=0.45, min_n=3)
    # 'high' has too few occurrence tests to judge: it keeps its tier
    assert moved == ["work"]
    assert new == {"type": "token_set", "tokens": ["well", "good", "high"], "weak": ["work", "fine"]}
    assert predicate_mask(new, TOKENS) == predicate_mask(pred, TOKENS)
    # graded prediction: 'work' now predicted at the weak value, the others unchanged
    before, after = predicate_values(pred, TOKENS), predicate_values(new, TOKENS)
    assert after[2] < before[2] and [a for i, a in enumerate(after) if i != 2] == [
        b for i, b in enumerate(before) if i != 2
    ]


def test_nothing_moves_unless_a_tested_token_reaches_the_level():
    pred = {"type": "token_set", "tokens": ["well", "work"]}
    assert demote_below(pred, _occ(well=0.3, work=0.2), level=0.45, min_n=3) == (pred, [])
    assert demote_below(pred, {}, level=0.45, min_n=3) == (pred, [])


def test_other_predicates_are_left_alone():
    pred = {"type": "preceded_by", "tokens": ["well"], "window": 2}
    assert demote_below(pred, _occ(well=0.1), level=0.45, min_n=3) == (pred, [])


def test_tested_tokens_the_feature_fires_on_join_the_weak_tier():
    pred = {"type": "token_set", "tokens": ["well"], "weak": ["fine"]}
    occ = {
        "well": {"n": 3, "fires": 3},  # already held
        "work": {"n": 5, "fires": 1},  # fires at a fifth of its occurrences: named
        "the": {"n": 6, "fires": 1},  # below a fifth: left out
        "high": {"n": 2, "fires": 2},  # too few occurrence tests to judge
        "good": {"n": 3, "fires": 3},  # another hypothesis's token
    }
    new, added = name_firing(pred, occ, share=0.2, min_n=3, exclude={"good"})
    assert added == ["work"]
    assert new == {"type": "token_set", "tokens": ["well"], "weak": ["fine", "work"]}
    # the strong tier, and the prediction on it, are unchanged; 'work' is predicted at the weak value
    tokens = ["<s>", " well", " work", " the"]
    assert predicate_values(new, tokens) == [0.0, 1.0, 0.5, 0.0]
    assert name_firing(pred, {}, share=0.2, min_n=3) == (pred, [])
    other = {"type": "preceded_by", "tokens": ["well"], "window": 2}
    assert name_firing(other, occ, share=0.2, min_n=3) == (other, [])
