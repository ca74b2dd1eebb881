"""The loop's confirm / refine rules (agents.nodes.apply_update), on hand-made hypotheses."""

from agents.nodes import apply_update, consistent_tests
from agents.runtime import AgentConfig
from sage.hypotheses.records import new_hypothesis

S = AgentConfig()


def _h(refinements=0):
    return new_hypothesis(
        "H1",
        "fires on 'ly'",
        "lexical",
        "primary",
        {"type": "token_set", "tokens": ["ly"]},
        refinements=refinements,
    )


def _probe(agrees, hid="H1"):
    return {"hypothesis_id": hid, "agrees": agrees}


def test_confirm_needs_two_consistent_tests():
    update = {"hypothesis_id": "H1", "status": "confirmed", "note": "looks right"}
    one = [_probe(True), _probe(False), _probe(True, hid="H2")]
    assert consistent_tests("H1", one) == 1
    h = apply_update(_h(), update, 1, one, S)
    assert h["status"] == "open" and "1 consistent test(s), 2 needed" in h["history"][-1]["note"]
    two = [*one, _probe(True)]
    assert apply_update(_h(), update, 1, two, S)["status"] == "confirmed"


def test_refinement_past_the_cap_stays_open_with_its_text():
    update = {
        "hypothesis_id": "H1",
        "status": "refined",
        "note": "narrower",
        "new_text": "fires on adverb 'ly'",
    }
    h = apply_update(_h(refinements=1), update, 2, [], S)
    assert (h["status"], h["text"], h["refinements"]) == ("refined", "fires on adverb 'ly'", 2)
    capped = apply_update(h, {**update, "new_text": "something else"}, 3, [], S)
    assert capped["status"] == "open" and capped["text"] == "fires on adverb 'ly'"
    assert capped["refinements"] == 2 and "cap 2 reached" in capped["history"][-1]["note"]


def test_scoring_pool_is_balanced():
    assert S.n_negatives == S.n_top + S.n_quantile_bins * S.per_quantile
