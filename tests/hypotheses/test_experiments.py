"""Concept experiments (sage.hypotheses.experiments): probe texts and how their results are read."""

from sage.hypotheses.experiments import (
    MEMBER,
    NEAR_MISS,
    concept_probes,
    concept_test_summary,
    swap_peak_word,
)
from sage.model.positions import skip_positions

SINK = [""] * skip_positions()
CONCEPT = {
    "name": "color",
    "members": ["gold", "yellow", "orange", "brown"],
    "non_members": ["shape", "size"],
}


def _ctx(tokens, acts):
    return {"tokens": SINK + tokens, "acts": [0.0] * len(SINK) + acts}


def test_the_peak_word_of_a_context_is_swapped_and_sub_word_peaks_are_not():
    ctx = _ctx(["The", " sky", " was", " blue", " today", "."], [0, 0, 0, 1.0, 0.2, 0])
    assert swap_peak_word(ctx["tokens"], ctx["acts"], "gold") == "The sky was gold today."
    piece = _ctx(["The", " bl", "ue", " sky"], [0, 1.0, 0, 0])
    assert swap_peak_word(piece["tokens"], piece["acts"], "gold") is None


def test_concept_probes_are_member_and_near_miss_pairs_in_the_same_frame():
    ctx = _ctx(["The", " sky", " was", " blue", " today", "."], [0, 0, 0, 1.0, 0.2, 0])
    probes = concept_probes("H1", CONCEPT, [ctx], rnd=1, pairs=2)
    assert [p["purpose"] for p in probes] == [MEMBER, NEAR_MISS] * 4
    assert probes[0]["text"] == "The sky was gold today." and probes[1]["text"] == "The sky was shape today."
    assert probes[1]["pair_of"] == 0 and probes[0]["expect"] == "high" and probes[1]["expect"] == "low"
    assert all(p["hypothesis_id"] == "H1" for p in probes)
    # the next round moves on to other members
    later = concept_probes("H1", CONCEPT, [ctx], rnd=2, pairs=2)
    assert {p["word"] for p in later if p["purpose"] == MEMBER} != {p["word"] for p in probes[:1]}
    assert concept_probes("H1", {**CONCEPT, "non_members": []}, [ctx], rnd=1) == []


def test_the_concept_is_supported_only_by_members_firing_and_near_misses_silent():
    def ev(purpose, agrees, word):
        return {"hypothesis_id": "H1", "purpose": purpose, "agrees": agrees, "word": word, "text": word}

    good = [
        ev(MEMBER, True, "gold"),
        ev(MEMBER, True, "tan"),
        ev(MEMBER, False, "ruby"),
        ev(NEAR_MISS, True, "size"),
    ]
    s = concept_test_summary("H1", good)
    assert s["supported"] and s["fired"] == ["gold", "tan"] and s["silent"] == ["ruby"]
    leaky = [*good, ev(NEAR_MISS, False, "shape")]
    assert not concept_test_summary("H1", leaky)["supported"]  # 1/2 near misses silent < 2/3
    assert not concept_test_summary("H2", good)["supported"]  # another hypothesis's tests do not count
