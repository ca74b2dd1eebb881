"""The offline explainer's concept rules, with a hand-made taxonomy (no WordNet, no model)."""

from sage.llm.offline import _analyze, _hypothesize
from tests.lexicon.test_concepts import Tiny

CTX = {
    "trigger_tokens": [[" blue", 0.3], [" green", 0.3], [" red", 0.2], [" white", 0.2]],
    "preceding": [[" the", 0.5]],
    "structure": {},
    "mi_words": [],
    "frequency": 0.01,
}


def test_trigger_words_of_one_category_give_a_named_concept_hypothesis_first():
    hyps = _hypothesize(CTX, Tiny())["hypotheses"]
    concept = hyps[0]
    assert concept["kind"] == "semantic" and concept["role"] == "primary"
    assert concept["concept"]["name"].startswith("color") and "gold" in concept["concept"]["members"]
    assert set(concept["concept"]["non_members"]) <= {"round", "square"}
    assert {"blue", "gold"} <= set(concept["predicate"]["tokens"])
    assert "words for color" in concept["text"]
    lexical = hyps[1]
    assert lexical["kind"] == "lexical" and lexical["role"] == "alternative"
    assert any(h["role"] == "control" for h in hyps)
    # without a lexicon the tokens themselves are the primary hypothesis, and nothing is named
    plain = _hypothesize(CTX, None)["hypotheses"]
    assert plain[0]["kind"] == "lexical" and plain[0]["role"] == "primary"
    assert not any(h.get("concept") for h in plain)


def _analysis(fired, tested, silent_words=()):
    h = _hypothesize(CTX, Tiny())["hypotheses"][0]
    h = {**h, "id": "H1", "status": "open", "precision": 0.6, "recall": 0.6, "f1": 0.6, "refinements": 0}
    tests = {
        "members_tested": tested,
        "members_fired": fired,
        "near_misses_tested": 2,
        "near_misses_silent": 2,
        "supported": fired >= 2 / 3 * tested,
        "fired": [],
        "silent": list(silent_words),
    }
    ctx = {
        "hypotheses": [h],
        "results": [],
        "token_stats": {},
        "preceding": [],
        "concept_tests": {"H1": tests},
    }
    return _analyze(ctx)["updates"][0], h


def test_a_concept_whose_unseen_members_stay_silent_is_refuted():
    update, _ = _analysis(fired=0, tested=4, silent_words=["gold", "gray", "pink", "tan"])
    assert update["status"] == "refuted" and "0/4 unseen members fired" in update["note"]


def test_members_whose_probes_stayed_silent_are_dropped_from_the_predicate():
    update, h = _analysis(fired=2, tested=4, silent_words=["gold", "gray"])
    assert update["status"] == "refined"
    assert "gold" in h["predicate"]["tokens"] and "gold" not in update["new_predicate"]["tokens"]
    assert "blue" in update["new_predicate"]["tokens"]


def test_a_concept_whose_near_misses_fire_too_is_broadened_to_its_parent():
    from sage.llm.offline import _analyze

    h = _hypothesize({**CTX, "trigger_tokens": [[" blue", 0.4], [" green", 0.3], [" red", 0.3]]}, Tiny())[
        "hypotheses"
    ][0]
    assert h["concept"]["category"] == "chromatic"
    h = {**h, "id": "H1", "status": "open", "precision": 0.8, "recall": 0.7, "f1": 0.75, "refinements": 0}
    tests = {
        "members_tested": 2,
        "members_fired": 2,
        "near_misses_tested": 2,
        "near_misses_silent": 0,
        "supported": False,
        "fired": ["pink", "gold"],
        "silent": [],
        "near_misses_fired": ["white", "round"],
    }
    ctx = {"hypotheses": [h], "results": [], "concept_tests": {"H1": tests}}
    (u,) = _analyze(ctx, Tiny())["updates"]
    assert u["status"] == "refined" and u["new_concept"]["category"] == "color"
    tokens = {t.strip() for t in u["new_predicate"]["tokens"]}
    # what fired stays (the members, the near miss that is a colour), the unseen colour joins, and the
    # near miss that is no colour does not
    assert {"pink", "gold", "white", "gray"} <= tokens and "round" not in tokens
    assert u["new_concept"]["members"] == ["gray"]
    assert "broadened from 'chromatic" in u["note"]
    # near misses that stayed silent: nothing to broaden (the generic rules decide)
    quiet = {**tests, "near_misses_silent": 2, "near_misses_fired": [], "supported": True}
    (u,) = _analyze({**ctx, "concept_tests": {"H1": quiet}}, Tiny())["updates"]
    assert u["status"] != "refined" or "new_concept" not in u
