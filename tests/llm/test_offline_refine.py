"""The offline explainer's refinement by occurrence tests, and its conjunction hypothesis (no model)."""

from sage.hypotheses.predicates import predicate_mask
from sage.llm.offline import _hypothesize, _refine, reliable_tokens


def test_reliable_tokens_are_those_at_least_half_as_strong_as_the_strongest():
    means = {"tax": 0.45, "financial": 0.8, "politics": 0.3, "the": 0.05}
    assert reliable_tokens(means) == ["financial", "tax"]
    assert reliable_tokens({"only": 0.01}) == ["only"]
    assert reliable_tokens({}) == []


def test_refine_drops_tokens_that_fire_weakly_where_they_occur_and_keeps_untested_ones():
    pred = {"type": "token_set", "tokens": [" financial", " tax", " politics", " fiscal"]}
    seen = {  # in the contexts seen so far every token looks active: they were chosen for it
        "financial": {"seen": 4, "active": 4, "mass": 3.0},
        "tax": {"seen": 3, "active": 3, "mass": 2.0},
        "politics": {"seen": 3, "active": 3, "mass": 1.5},
        "fiscal": {"seen": 2, "active": 2, "mass": 1.0},
    }
    occ = {
        "financial": {"n": 4, "active": 4, "mean": 0.8},
        "tax": {"n": 4, "active": 3, "mean": 0.5},
        "politics": {"n": 4, "active": 1, "mean": 0.1},
        "fiscal": {"n": 1, "active": 0, "mean": 0.0},  # too few occurrences to judge
    }
    got = _refine(pred, seen, [], occ, {"min": 2})
    assert got["tokens"] == [" financial", " tax", " fiscal"]


def test_refine_never_empties_a_token_set():
    pred = {"type": "token_set", "tokens": [" be"]}
    got = _refine(pred, {"be": {"seen": 10, "active": 1, "mass": 0.3}}, [], {}, {"min": 2})
    assert got["tokens"] == [" be"]


def test_a_word_that_fires_after_a_context_word_gets_a_conjunction_hypothesis():
    ctx = {
        "trigger_tokens": [[" be", 0.9]],
        "preceding": [[" should", 0.7], [" not", 0.1]],
        "structure": {},
        "mi_words": [],
        "frequency": 0.01,
    }
    hyps = _hypothesize(ctx, None)["hypotheses"]
    conj = [h for h in hyps if (h.get("predicate") or {}).get("type") == "and"]
    assert len(conj) == 1 and "' should'" in conj[0]["text"]
    mask = predicate_mask(conj[0]["predicate"], ["<s>", " you", " should", " be", " fine", " to", " be"])
    assert mask == [False, False, False, True, False, False, False]
    assert hyps[-1]["role"] == "control" and len(hyps) <= 6


def _conj_ctx(split):
    h = {
        "id": "H3",
        "status": "open",
        "kind": "contextual",
        "text": "Fires on 'be' after 'should'",
        "predicate": {
            "type": "and",
            "all": [
                {"type": "token_set", "tokens": ["be"]},
                {"type": "preceded_by", "tokens": ["should"], "window": 2},
            ],
        },
        "precision": 0.9,
        "recall": 0.6,
        "f1": 0.72,
    }
    return {"hypotheses": [h], "results": [], "conjunction_tests": {"H3": split}}


def test_a_conjunction_whose_words_fire_without_the_condition_is_refuted():
    from sage.llm.offline import _analyze

    (u,) = _analyze(_conj_ctx({"with": [4, 4, 3.2], "without": [6, 5, 3.0]}))["updates"]
    assert u["status"] == "refuted" and "over 6 occurrences" in u["note"]
    # weakly active without the condition, strong with it ('thing' after 'one'): the conjunction stands
    (u,) = _analyze(_conj_ctx({"with": [4, 4, 3.2], "without": [6, 4, 1.5]}))["updates"]
    assert u["status"] != "refuted"
    # too few occurrences without it to tell
    (u,) = _analyze(_conj_ctx({"with": [4, 4, 3.2], "without": [2, 2, 1.6]}))["updates"]
    assert u["status"] != "refuted"


def _lexical(history=()):
    return {
        "id": "H1",
        "status": "open",
        "kind": "lexical",
        "text": "Fires on 'universal', 'al'",
        "predicate": {"type": "token_set", "tokens": ["universal", "al"]},
        "precision": 0.9,
        "recall": 0.9,
        "f1": 0.9,
        "history": list(history),
    }


def test_weak_tokens_are_dropped_before_a_hypothesis_can_be_confirmed():
    from sage.llm.offline import _analyze

    occ = {"universal": {"n": 4, "active": 4, "mean": 0.9}, "al": {"n": 30, "active": 1, "mean": 0.02}}
    ctx = {"hypotheses": [_lexical()], "results": [], "occurrences": occ, "occurrence_rule": {"min": 3}}
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] == "refined" and u["new_predicate"]["tokens"] == ["universal"]
    # once the loop has rejected that refinement (held-out r fell), the hypothesis is judged as it is
    rejected = {"round": 1, "status": "open", "note": "... [refinement rejected: (held-out r, ...)]"}
    ctx["hypotheses"] = [_lexical([rejected])]
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] == "confirmed"


def test_occurrence_tests_sort_a_token_set_into_strong_weak_and_dropped_tokens():
    from sage.llm.offline import _analyze

    occ = {
        "universal": {"n": 4, "active": 4, "mean": 0.9},
        "al": {"n": 30, "active": 10, "mean": 0.3},  # a third of the strongest's mean: weak tier
        "uni": {"n": 4, "active": 3, "mean": 0.15},  # active in most occurrences, if weakly: weak tier
        "versal": {"n": 5, "active": 1, "mean": 0.05},  # mostly silent: dropped
    }
    h = {**_lexical(), "predicate": {"type": "token_set", "tokens": ["universal", "al", "uni", "versal"]}}
    ctx = {"hypotheses": [h], "results": [], "occurrences": occ, "occurrence_rule": {"min": 3}}
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] == "refined"
    assert u["new_predicate"] == {"type": "token_set", "tokens": ["universal"], "weak": ["al", "uni"]}
    assert "'versal'" in u["note"] and "weak tier" in u["note"]
    # a weak token that proves strong is promoted, and a settled set is not refined again
    occ["al"] = {"n": 30, "active": 28, "mean": 0.8}
    ctx["hypotheses"] = [{**h, "predicate": u["new_predicate"]}]
    (u,) = _analyze(ctx)["updates"]
    assert u["new_predicate"] == {"type": "token_set", "tokens": ["universal", "al"], "weak": ["uni"]}
    ctx["hypotheses"] = [{**h, "predicate": u["new_predicate"]}]
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] != "refined"


def test_a_rejected_drop_is_retried_once_as_a_move_to_the_weak_tier():
    from sage.llm.offline import _analyze

    occ = {"its": {"n": 6, "active": 6, "mean": 0.8}, "'s": {"n": 6, "active": 1, "mean": 0.1}}
    h = {**_lexical(), "predicate": {"type": "token_set", "tokens": ["its", "'s"]}}
    ctx = {"hypotheses": [h], "results": [], "occurrences": occ, "occurrence_rule": {"min": 3}}
    (u,) = _analyze(ctx)["updates"]
    assert u["new_predicate"] == {"type": "token_set", "tokens": ["its"]}
    # the gate rejects the drop (held-out F1 fell): the milder step keeps "'s" as weak
    rejected = {"round": 1, "status": "open", "note": u["note"] + " [refinement rejected: ...]"}
    ctx["hypotheses"] = [{**h, "history": [rejected]}]
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] == "refined"
    assert u["new_predicate"] == {"type": "token_set", "tokens": ["its"], "weak": ["'s"]}
    # and when that is rejected too, the hypothesis is judged as it is
    rejected = {"round": 2, "status": "open", "note": u["note"] + " [refinement rejected: ...]"}
    ctx["hypotheses"] = [{**h, "history": [rejected]}]
    (u,) = _analyze(ctx)["updates"]
    assert u["status"] != "refined"
