"""The shared hypothesis language's small pieces: records, the sink rule, the rule-based conclusion."""

import dataclasses

import pytest

from sage.hypotheses.conclusion import conclude_from_evidence, quote_tokens
from sage.hypotheses.predicates import body_mask, predicate_mask, trigger_words
from sage.hypotheses.records import UNSCORED, new_hypothesis
from sage.model import engine_config
from sage.model.positions import peak_position


def test_new_hypothesis_keeps_the_record_shape_and_key_order():
    h = new_hypothesis("H1", "t", "lexical", "primary", None, refinements=0)
    assert list(h) == ["id", "text", "kind", "role", "predicate", "status", "refinements", "history"]
    assert h["status"] == "open" and h["history"] == [{"round": 0, "status": "open", "text": "t"}]
    h = new_hypothesis("H1", "t", "semantic", "primary", {"type": "token_set", "tokens": ["a"]}, **UNSCORED)
    assert list(h)[6:] == ["precision", "recall", "f1", "history"] and h["f1"] is None


def test_peak_position_skips_the_sink_and_takes_the_earliest_tie():
    assert peak_position([9.0, 1.0, 3.0, 3.0]) == 2
    assert peak_position([9.0, 1.0, 3.0], skip=2) == 2
    assert peak_position([9.0]) == 0 and peak_position([]) == 0  # nothing after the sink


def test_the_sink_rule_follows_engine_skip_positions(monkeypatch):
    pred = {"type": "token_set", "tokens": ["a"]}
    assert predicate_mask(pred, ["a", "a", "a"]) == [False, True, True]
    assert body_mask(pred, ["a", "b"]) == [True, False]
    monkeypatch.setattr(engine_config, "ENGINE", dataclasses.replace(engine_config.ENGINE, skip_positions=2))
    assert predicate_mask(pred, ["a", "a", "a"]) == [False, False, True]
    assert body_mask(pred, ["a", "b"]) == [True, False]  # a sink-less text: every position counts
    assert peak_position([0.0, 9.0, 1.0]) == 2


def test_rule_based_conclusion_names_the_best_confirmed_hypothesis():
    hyps = [
        {
            **new_hypothesis("H1", "x", "lexical", "primary", {"type": "token_set", "tokens": ["cat"]}),
            "status": "confirmed",
            "precision": 0.9,
            "recall": 0.8,
            "f1": 0.85,
        },
        {
            **new_hypothesis(
                "H2", "y", "syntactic-structural", "control", {"type": "structural", "property": "word_start"}
            ),
            "status": "refuted",
            "precision": 0.1,
            "recall": 0.1,
            "f1": 0.1,
        },
    ]
    top = {"tokens": ["<s>", " the", " cat"], "acts": [5.0, 0.1, 1.0]}
    c = conclude_from_evidence({"hypotheses": hyps, "top": [top], "strongest_probe": None, "n_probes": 0})
    assert c["labels"] == ["lexical: 'cat'"] and c["best_hypothesis_ids"] == ["H1"]
    assert "ends \"the cat\" (activation 1.00 of max on ' cat')" in c["description"]
    assert c["description"].endswith("Refuted: H2.")
    assert conclude_from_evidence({"hypotheses": []})["labels"] == ["unexplained feature"]
    assert conclude_from_evidence({"hypotheses": []}, dead=True)["labels"] == ["dead feature"]
    assert quote_tokens(list("abcdefghi")).endswith("'h' ...")


def test_a_second_meaning_must_hold_on_other_tokens():
    def confirmed(hid, kind, pred, f1):
        h = new_hypothesis(hid, hid, kind, "primary", pred)
        return {**h, "status": "confirmed", "precision": f1, "recall": f1, "f1": f1}

    od = {"type": "token_set", "tokens": ["od"]}
    after_mel = {"type": "and", "all": [od, {"type": "preceded_by", "tokens": ["mel"], "window": 2}]}
    cat = {"type": "token_set", "tokens": ["cat"], "weak": ["kitten"]}
    first = confirmed("H1", "contextual", after_mel, 0.9)
    # 'od' alone is the same meaning as 'od' after 'mel' (the old rule named it a second meaning)
    same = conclude_from_evidence({"hypotheses": [first, confirmed("H2", "lexical", od, 0.6)]})
    assert same["best_hypothesis_ids"] == ["H1"]
    other = conclude_from_evidence({"hypotheses": [first, confirmed("H2", "lexical", cat, 0.6)]})
    assert other["best_hypothesis_ids"] == ["H1", "H2"] and len(other["labels"]) == 2
    assert trigger_words({"type": "or", "any": [after_mel, cat]}) == {"od", "cat", "kitten"}
    assert trigger_words({"type": "not", "arg": od}) == set()


@pytest.mark.parametrize("dead", [True, False])
def test_dead_conclusion_is_a_fresh_dict(dead):
    a = conclude_from_evidence({"hypotheses": []}, dead=dead)
    a["labels"].append("changed")
    assert conclude_from_evidence({"hypotheses": []}, dead=dead)["labels"] == (
        ["dead feature"] if dead else ["unexplained feature"]
    )


def test_a_confirmed_concept_is_named_ahead_of_the_word_list_it_covers():
    words = {"type": "token_set", "tokens": ["dog", "bat", "pigs"]}
    members = {"type": "token_set", "tokens": ["dog", "bat", "pigs", "mouse", "lion"]}
    lexical = {**new_hypothesis("H2", "x", "lexical", "alternative", words), "status": "confirmed"}
    concept = {
        **new_hypothesis("H1", "y", "semantic", "primary", members),
        "status": "confirmed",
        "concept": {"name": "placental (a kind of mammal)", "members": ["mouse", "lion"], "non_members": []},
    }
    scores = {"precision": 0.9, "recall": 0.8, "f1": 0.85, "heldout_f1": 0.8}
    hyps = [{**lexical, **scores, "heldout_r": 0.7}, {**concept, **scores, "heldout_r": 0.6}]
    c = conclude_from_evidence({"hypotheses": hyps, "top": [], "strongest_probe": None, "n_probes": 0})
    assert c["best_hypothesis_ids"][0] == "H1"
    # an open (untested) concept does not jump the queue
    hyps[1] = {**hyps[1], "status": "open"}
    c = conclude_from_evidence({"hypotheses": hyps, "top": [], "strongest_probe": None, "n_probes": 0})
    assert c["best_hypothesis_ids"][0] == "H2"


def test_a_confirmed_concept_leads_the_word_list_it_covers_in_either_tier():
    def scored(hid, kind, pred, heldout_r, concept=None):
        h = {**new_hypothesis(hid, hid, kind, "primary", pred), "status": "confirmed"}
        h.update(precision=0.9, recall=0.8, f1=0.85, heldout_r=heldout_r, heldout_f1=0.8)
        return {**h, "concept": concept} if concept else h

    concept = {"name": "colour", "members": ["teal"], "non_members": ["table"]}
    # the conclusion moved 'green' and 'pink' to the concept's weak tier: still the concept's words
    colours = {"type": "token_set", "tokens": ["blue"], "weak": ["green", "pink"]}
    words = {"type": "token_set", "tokens": ["blue", "green", "pink"]}
    hyps = [scored("H1", "semantic", colours, 0.70, concept), scored("H2", "lexical", words, 0.72)]
    c = conclude_from_evidence({"hypotheses": hyps, "top": [], "strongest_probe": None, "n_probes": 0})
    assert c["best_hypothesis_ids"] == ["H1"] and c["labels"] == ["semantic: colour"]
