"""Which of a token set's tokens the conclusion names as strong: the peaks, by SAGE's own rule.

A token set's `tokens` are where the explanation says the feature fires strongly, its `weak` tier
where it fires, but more weakly (sage.hypotheses.predicates). The loop tiers tokens relative to one
another (`reliable_tokens` in the offline explainer: at least half the strongest token's mean), which
is what a token-level correlation needs. A reader asked for text on which the feature fires takes the
strong tier at its word, so the conclusion also holds it to an absolute level, the one the SAGE paper
calls a strong activation: half the mean of the top-10 contexts' maxima (jiujiubuhejiu/SAGE
scripts/evaluate.py, "avg of top 10 max activations / 2"; the evaluation's generative accuracy uses
the same `STRONG_FRACTION` and `STRONG_TOP_N`).

Pure functions: no model, no store.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.hypotheses.predicates import norm_token

#: a strong activation is at least this share of the mean max activation of the top contexts
STRONG_FRACTION = 0.5
#: how many top contexts that mean is taken over
STRONG_TOP_N = 10


def strong_level(top_maxima: Sequence[float]) -> float:
    """The activation SAGE calls strong: `STRONG_FRACTION` x the mean of the first `STRONG_TOP_N` of
    `top_maxima` (the top contexts' max activations, strongest first, in any one unit; the result is
    in that unit). 0.0 without contexts."""
    top = list(top_maxima)[:STRONG_TOP_N]
    return STRONG_FRACTION * sum(top) / len(top) if top else 0.0


def demote_below(pred: dict, occurrences: dict, level: float, min_n: int) -> tuple[dict, list[str]]:
    """A token-set predicate whose strong tokens fall short of `level` where they occur, moved to
    its weak tier: (new predicate, the tokens moved).

    occurrences: {normalised token: {"n": occurrences, "mean": mean activation}} from the occurrence
    tests (`sage.hypotheses.scoring.occurrence_stats`, contexts sampled for the token, not for the
    feature); a token with fewer than `min_n` of them is not judged and keeps its tier. Nothing moves
    unless a tested strong token reaches `level`, so the strong tier keeps a measured peak. The mask
    (strong and weak together) is unchanged, so detection and the token-level F1 are too; `pred`
    itself for other predicate types.
    """
    if pred.get("type") != "token_set":
        return pred, []
    means = {
        t: occurrences[norm_token(t)]["mean"]
        for t in pred["tokens"]
        if norm_token(t) in occurrences and occurrences[norm_token(t)]["n"] >= min_n
    }
    moved = [t for t, m in means.items() if m < level]
    if not moved or len(moved) == len(means):
        return pred, []
    tokens = [t for t in pred["tokens"] if t not in moved]
    return {**pred, "tokens": tokens, "weak": [*moved, *pred.get("weak", [])]}, moved
