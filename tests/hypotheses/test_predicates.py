"""Predicates with a weak tier: a mask holds on both tiers, predicted values grade them."""

import jsonschema
import pytest

import prompts
from sage.hypotheses.predicates import (
    WEAK_VALUE,
    describe,
    predicate_mask,
    predicate_values,
    strong_part,
)

TIERED = {"type": "token_set", "tokens": ["well"], "weak": ["good", "fine"]}
TOKENS = ["<s>", " well", " good", " day", " Fine", " well"]


def test_a_mask_holds_on_both_tiers_and_values_grade_them():
    assert predicate_mask(TIERED, TOKENS) == [False, True, True, False, True, True]
    assert predicate_values(TIERED, TOKENS) == [0.0, 1.0, WEAK_VALUE, 0.0, WEAK_VALUE, 1.0]
    flat = {"type": "token_set", "tokens": ["well", "good"]}
    assert predicate_values(flat, TOKENS) == [float(m) for m in predicate_mask(flat, TOKENS)]


def test_the_strong_part_drops_weak_tiers_except_under_a_not():
    assert strong_part(TIERED) == {"type": "token_set", "tokens": ["well"]}
    conj = {"type": "and", "all": [TIERED, {"type": "preceded_by", "tokens": ["very"], "window": 1}]}
    assert strong_part(conj)["all"][0] == {"type": "token_set", "tokens": ["well"]}
    toks = ["<s>", " very", " good", " very", " well"]
    assert predicate_values(conj, toks) == [0.0, 0.0, WEAK_VALUE, 0.0, 1.0]
    # dropping the weak tokens inside a `not` would make it hold on them: it stays as written
    negated = {"type": "not", "arg": TIERED}
    assert strong_part(negated) == negated and strong_part(conj) != conj


def test_the_weak_tier_is_described_and_valid_in_the_schema():
    assert "more weakly: 'good', 'fine'" in describe(TIERED)
    check = prompts.validator("predicate")
    check.validate(TIERED)
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**TIERED, "weak": [3]})
