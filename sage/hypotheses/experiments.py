"""Experiments that test a concept hypothesis: pure construction of probe texts (no model).

A concept hypothesis ("fires on colour words") names a category and lists members that were not
among the examples and near-miss non-members (see `sage.lexicon.concepts`, or an LLM's own list).
It is tested where it can fail:

- an unseen member in the feature's own strongest context, in place of the word it fired on
  (expect high), paired with a near miss in the same place (expect low): a minimal pair;
- the same pair in a neutral frame, so the context cannot be doing the work.

A concept is confirmed only when its unseen members fire and its near misses stay silent
(`concept_test_summary`); the agent's rules enforce that, whichever explainer proposed it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.model.positions import peak_position, skip_positions

#: sentences with one slot for a word (with its leading space), used where a probe needs a neutral
#: context; shared with the offline explainer's minimal pairs
NEUTRAL_FRAMES = (
    "I keep thinking about{t} these days.",
    "She wrote{t} on the first page.",
    "They talked about{t} for an hour.",
)
#: purposes of the two halves of a concept test
MEMBER, NEAR_MISS = "unseen_member", "near_miss"
#: share of a concept's member (near-miss) probes that must fire (stay silent) to confirm it
CONCEPT_AGREEMENT = 2 / 3


def _word(w: str) -> str:
    return " " + w.strip()


def swap_peak_word(tokens: Sequence[str], acts: Sequence[float], word: str, after: int = 3) -> str | None:
    """The context's text up to `after` tokens past its peak, with the peak token replaced by `word`
    (leading space kept as in the original), or None when the peak is a sub-word piece (replacing
    it would not swap a word)."""
    skip = skip_positions()
    if len(tokens) <= skip:
        return None
    pos = peak_position(list(acts), skip)
    peak = tokens[pos]
    if not peak.strip().isalpha() or (pos + 1 < len(tokens) and tokens[pos + 1][:1].isalpha()):
        return None
    lead = peak[: len(peak) - len(peak.lstrip())]
    return "".join(tokens[skip:pos]) + lead + word.strip() + "".join(tokens[pos + 1 : pos + 1 + after])


def concept_probes(
    hypothesis_id: str, concept: dict, contexts: Sequence[dict], rnd: int, pairs: int = 2
) -> list[dict]:
    """Minimal pairs for a concept hypothesis: (unseen member, near miss) swapped into the feature's
    strongest contexts, then into neutral frames. Round `rnd` (1-based) uses the next members, so
    every round tests words not tested before. Returns probe dicts (hypothesis_id, text, purpose,
    expect, pair_of as an index into the returned list)."""
    members, misses = list(concept.get("members", [])), list(concept.get("non_members", []))
    n = min(len(members), len(misses))
    if n == 0:
        return []
    out: list[dict] = []
    frames: list = [c for c in contexts[:pairs]] + list(NEUTRAL_FRAMES)
    for j in range(pairs * 2):
        k = ((rnd - 1) * pairs * 2 + j) % n
        frame = frames[j % len(frames)]
        if isinstance(frame, str):
            pos_text, neg_text = frame.format(t=_word(members[k])), frame.format(t=_word(misses[k]))
        else:
            pos_text = swap_peak_word(frame["tokens"], frame["acts"], members[k])
            neg_text = swap_peak_word(frame["tokens"], frame["acts"], misses[k])
            if pos_text is None or neg_text is None:
                frame = NEUTRAL_FRAMES[j % len(NEUTRAL_FRAMES)]
                pos_text, neg_text = frame.format(t=_word(members[k])), frame.format(t=_word(misses[k]))
        out.append(
            {
                "hypothesis_id": hypothesis_id,
                "text": pos_text,
                "purpose": MEMBER,
                "expect": "high",
                "word": members[k],
            }
        )
        out.append(
            {
                "hypothesis_id": hypothesis_id,
                "text": neg_text,
                "purpose": NEAR_MISS,
                "expect": "low",
                "word": misses[k],
                "pair_of": len(out) - 1,
            }
        )
    return out


def concept_test_summary(hypothesis_id: str, evidence: Sequence[dict], concept: dict | None = None) -> dict:
    """How the concept tests of one hypothesis came out: counts of unseen-member probes that fired and
    near-miss probes that stayed silent, and whether that supports the concept. With `concept`, only
    the tests of its own members and near misses count (a concept broadened after its near misses
    fired is judged on its new words: the old near misses may be its members now)."""
    own = [e for e in evidence if e.get("hypothesis_id") == hypothesis_id]
    if concept is not None:
        words = {*concept.get("members", []), *concept.get("non_members", [])}
        own = [e for e in own if e.get("word") is None or e["word"] in words]
    members = [e for e in own if e.get("purpose") == MEMBER]
    misses = [e for e in own if e.get("purpose") == NEAR_MISS]
    fired = sum(bool(e["agrees"]) for e in members)
    silent = sum(bool(e["agrees"]) for e in misses)
    supported = (
        bool(members)
        and bool(misses)
        and fired >= CONCEPT_AGREEMENT * len(members)
        and silent >= CONCEPT_AGREEMENT * len(misses)
    )
    return {
        "members_tested": len(members),
        "members_fired": fired,
        "near_misses_tested": len(misses),
        "near_misses_silent": silent,
        "supported": supported,
        "fired": [e.get("word", e.get("text", "")) for e in members if e["agrees"]],
        "silent": [e.get("word", e.get("text", "")) for e in members if not e["agrees"]],
        # near misses that fired: evidence that the feature's category is wider than the one named
        "near_misses_fired": [e.get("word", e.get("text", "")) for e in misses if not e["agrees"]],
    }
