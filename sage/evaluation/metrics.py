"""Pure scoring math of the evaluation (no model, no LLM, no I/O).

Convention: these functions return `None` for a score that is undefined on their input (no
data, a constant side of a correlation, a class that never occurs). The evaluation then decides
what a `None` means (sage/evaluation/run.py): where the held-out data cannot support a metric it
stays out for every method alike; where an explanation fails (no predicate, a constant
prediction, a scorer miscount) it scores the metric's floor, `floor_scores`, so that a method
that fails often cannot look better by being averaged over fewer features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

# one definition, shared with the loop's held-out detection (context_detection)
from sage.hypotheses.scoring import classification_scores

#: The simulator's scale (OpenAI's explain-simulate-score): integer activations 0..10.
SIMULATION_MAX = 10


def defined(values: Sequence[float | None]) -> list[float]:
    """The values that are not None (NaN is treated as not computed too)."""
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Mean of the defined values; None when there are none."""
    vals = defined(values)
    return sum(vals) / len(vals) if vals else None


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of two equal-length sequences.

    None when it is undefined: fewer than two points, or either side constant
    (e.g. a predictor that predicts the same value everywhere).
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"pearson needs equal lengths, got {a.shape} and {b.shape}")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    da, db = a - a.mean(), b - b.mean()
    r = float((da * db).sum() / math.sqrt(float((da * da).sum()) * float((db * db).sum())))
    return max(-1.0, min(1.0, r))


def correlation_scores(predicted: Sequence[Sequence[float]], actual: Sequence[Sequence[float]]) -> dict:
    """Per-token agreement of predicted and real activations over several contexts.

    predicted / actual: one list per context, aligned token by token (sink excluded by the caller).
    Returns `pooled` (r over every token of every context), `per_context` (mean of the
    per-context r over the contexts where r is defined), and the counts behind them.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predicted contexts for {len(actual)} real ones")
    per = []
    for p, a in zip(predicted, actual):
        if len(p) != len(a):
            raise ValueError(f"a context has {len(p)} predictions for {len(a)} tokens")
        per.append(pearson(p, a))
    flat_p = [v for p in predicted for v in p]
    flat_a = [v for a in actual for v in a]
    return {
        "pooled": pearson(flat_p, flat_a) if flat_p else None,
        "per_context": mean_defined(per),
        "n_contexts": len(actual),
        "n_defined": len(defined(per)),
        "n_tokens": len(flat_a),
    }


def generative_accuracy(max_acts: Sequence[float], reference: float, fraction: float = 0.5) -> float | None:
    """SAGE's generative accuracy: the share of generated texts whose max activation reaches
    `fraction` x `reference` (the mean max activation of the feature's top contexts).

    None when nothing was generated or the feature has no reference activation (never fires).
    """
    if not max_acts or reference <= 0:
        return None
    threshold = fraction * reference
    return sum(a >= threshold for a in max_acts) / len(max_acts)


def digit_expected_value(logprobs: Mapping[str, float], max_value: int = SIMULATION_MAX) -> float | None:
    """Expected activation under a simulator's next-token distribution (OpenAI's explain-simulate-score).

    logprobs: `{token: natural-log probability}` (a top-k slice of one position). Tokens that
    read as an integer 0..max_value (surrounding whitespace ignored; " 3" and "3" pool) form the
    distribution, renormalised over what the top-k shows. None when no such token is present.
    """
    mass: dict[int, float] = {}
    for tok, lp in logprobs.items():
        t = tok.strip()
        if t.isdigit() and int(t) <= max_value and str(int(t)) == t:
            mass[int(t)] = mass.get(int(t), 0.0) + math.exp(lp)
    total = sum(mass.values())
    if total <= 0:
        return None
    return sum(v * p for v, p in mass.items()) / total


#: A failed explanation's correlation: no information about the activations.
FLOOR_R = 0.0
#: A failed explanation's generative / retrieval accuracy: no text that fires.
FLOOR_ACCURACY = 0.0
#: A failed explanation's intervention accuracy: a coin flip between the two continuations.
FLOOR_PICK = 0.5


def pick_accuracy(picks: Sequence[int | None], truth: Sequence[int]) -> float | None:
    """Share of pairs where the pick names the steered item; a pick of None ("cannot tell") counts one
    half, as a coin flip would on average. None when there are no pairs."""
    if len(picks) != len(truth):
        raise ValueError(f"{len(picks)} picks for {len(truth)} pairs")
    if not truth:
        return None
    return sum(0.5 if p is None else float(p == t) for p, t in zip(picks, truth)) / len(truth)


def never_fires_scores(actual: Sequence[bool]) -> dict:
    """The classification scores of an explanation that answers "does not fire" to every item: the
    floor a failed explanation scores (accuracy = the share of negatives, F1 = 0, balanced accuracy
    = 0.5, i.e. chance)."""
    return classification_scores([False] * len(actual), actual)


def always_fires_scores(actual: Sequence[bool]) -> dict:
    """The classification scores of an answer of "fires" to every item: the reference that shows what
    a metric gives for saying yes alone (on a set with as many firing items as silent ones, F1 = 2/3
    and balanced accuracy = 0.5)."""
    return classification_scores([True] * len(actual), actual)


def truth_from_counts(counts: Mapping[str, int]) -> list[bool] | None:
    """The items' truth, up to order, from a classification's counts (tp, fp, tn, fn): what a score
    record keeps of it. None when a count is missing."""
    if not all(k in counts for k in ("tp", "fp", "tn", "fn")):
        return None
    pos, neg = counts["tp"] + counts["fn"], counts["fp"] + counts["tn"]
    return [True] * pos + [False] * neg


def bootstrap_ci(
    values: Sequence[float | None], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the mean of the defined values; None if there are none."""
    vals = np.asarray(defined(values), dtype=np.float64)
    if vals.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = vals[rng.integers(0, vals.size, size=(n_resamples, vals.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_win_rate(a: Sequence[float | None], b: Sequence[float | None]) -> dict | None:
    """How often method A beats method B on the same items (pairs where both are defined).

    win_rate = (wins + ties / 2) / n. None when no pair has both scores.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return None
    wins = sum(x > y for x, y in pairs)
    ties = sum(x == y for x, y in pairs)
    n = len(pairs)
    return {"win_rate": (wins + ties / 2) / n, "wins": wins, "ties": ties, "losses": n - wins - ties, "n": n}
