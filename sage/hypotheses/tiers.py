"""Which of a token set's tokens the conclusion names as strong: the peaks, by SAGE's own rule.

A token set's `tokens` are where the explanation says the feature fires strongly, its `weak` tier
where it fires, but more weakly (sage.hypotheses.predicates). The loop tiers tokens relative to one
another (`reliable_tokens` in the offline explainer: at least half the strongest token's mean), which
is what a token-level correlation needs. A reader asked for text on which the feature fires takes the
strong tier at its word, so the conclusion also holds it to an absolute level, the one the SAGE paper
calls a strong activation: half the mean of the top-10 contexts' maxima (jiujiubuhejiu/SAGE
scripts/evaluate.py, "avg of top 10 max activations / 2"; the evaluation's generative accuracy uses
the same `STRONG_FRACTION` and `STRONG_TOP_N`).

The conclusion also names, in the weak tier, the tested tokens the loop left out although the
feature fires (above 0) at a real share of their occurrences (`FIRE_SHARE`; `name_firing`): the loop
keeps a token for what a token-level correlation needs, a reader asking "does this text make the
feature fire at all?" (detection) needs every token it is known to fire on.

Pure functions: no model, no store.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.hypotheses.predicates import norm_token

#: a strong activation is at least this share of the mean max activation of the top contexts
STRONG_FRACTION = 0.5
#: how many top contexts that mean is taken over
STRONG_TOP_N = 10
#: a tested token the feature fires on (above 0) at at least this share of its occurrences is named
#: in the conclusion's weak tier (`name_firing`). 1/5: one in 3-5 occurrence tests, the fewest a token
#: gets; re-scored on two compares it raised detection F1 most of the shares tried, left balanced
#: accuracy and pooled r level and cost some per-context r (docs/methods.md)
FIRE_SHARE = 0.2


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


def name_firing(
    pred: dict, occurrences: dict, share: float, min_n: int, exclude: set[str] = frozenset()
) -> tuple[dict, list[str]]:
    """A token-set predicate with its weak tier extended by the tested tokens it does not hold that the
    feature fires on (above 0) at at least `share` of their occurrences: (new predicate, tokens added).

    occurrences: {normalised token: {"n": occurrences, "fires": how many fired}} from the occurrence
    tests (`sage.hypotheses.scoring.occurrence_stats`); tokens with fewer than `min_n` are not judged.
    exclude: normalised tokens not to add (e.g. another hypothesis's, so that two meanings stay two).
    The strong tier, and so what the explanation calls the peaks, does not change; `pred` itself for
    other predicate types.
    """
    if pred.get("type") != "token_set":
        return pred, []
    cs = bool(pred.get("case_sensitive", False))
    held = {norm_token(t, cs) for t in [*pred["tokens"], *pred.get("weak", [])]}
    added = sorted(
        t
        for t, o in occurrences.items()
        if o["n"] >= min_n
        and o.get("fires", 0) >= share * o["n"]
        and norm_token(t, cs) not in held
        and t not in exclude
    )
    if not added:
        return pred, []
    return {**pred, "weak": [*pred.get("weak", []), *added]}, added
