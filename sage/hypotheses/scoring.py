"""Pure scoring of hypotheses against observed activations (no model, no LLM).

An *observation* is one tokenised text with the feature's activations normalised by
its corpus maximum: `{"tokens": [...], "acts": [...]}` (the first `ENGINE.skip_positions`
positions are the sink, ignored).
A token is *active* when its normalised activation reaches `active_threshold`: a
threshold relative to each feature's own scale, never an absolute number.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from sage.hypotheses.predicates import STRUCTURAL, norm_token, predicate_mask, predicate_values
from sage.model.positions import skip_positions


def normalise(acts: Iterable[float], max_activation: float) -> list[float]:
    """Activations divided by the feature's corpus maximum (0 when the feature never fired)."""
    scale = max_activation if max_activation > 0 else 1.0
    return [float(a) / scale if max_activation > 0 else 0.0 for a in acts]


def body(obs: dict) -> range:
    """The positions of `obs` that are read: every token after the sink."""
    return range(skip_positions(), len(obs["tokens"]))


def predicate_scores(pred: dict | None, observations: list[dict], threshold: float) -> dict:
    """Token-level precision / recall / F1 of `pred` (predicted active) against real activity."""
    if pred is None:
        return {"precision": None, "recall": None, "f1": None, "tp": 0, "fp": 0, "fn": 0}
    tp = fp = fn = 0
    for obs in observations:
        mask = predicate_mask(pred, obs["tokens"])
        for i in body(obs):
            active = obs["acts"][i] >= threshold
            tp += mask[i] and active
            fp += mask[i] and not active
            fn += (not mask[i]) and active
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def conjunction_split(pred: dict | None, observations: list[dict], threshold: float) -> dict | None:
    """How a conjunction {"type": "and", "all": [token_set, condition, ...]} fared in the occurrence
    tests (observations carrying a `token`): at the positions where its token set holds, how often the
    feature was active with the rest of the conjunction holding and without it, and its summed
    normalised activation there. {"with": [positions, active, sum], "without": [...]}; None for any
    other predicate."""
    if not pred or pred.get("type") != "and":
        return None
    words = [p for p in pred["all"] if p.get("type") == "token_set"]
    if len(words) != 1:
        return None
    out = {"with": [0, 0, 0.0], "without": [0, 0, 0.0]}
    for obs in observations:
        if not obs.get("token"):
            continue
        word, whole = predicate_mask(words[0], obs["tokens"]), predicate_mask(pred, obs["tokens"])
        for i in body(obs):
            if word[i]:
                side = out["with" if whole[i] else "without"]
                side[0] += 1
                side[1] += obs["acts"][i] >= threshold
                side[2] += obs["acts"][i]
    return out


def predicate_r(pred: dict | None, observations: list[dict]) -> float | None:
    """Pearson r, pooled over every read position, between `pred`'s predicted values
    (`predicate_values`: 1 where it holds, less on its weak tokens) and the normalised activations:
    what the offline predictive scorer measures on held-out contexts. None without a predicate or
    positions; 0.0 when either side is constant (a mask that never or always holds predicts nothing)."""
    if pred is None:
        return None
    xs, ys = [], []
    for obs in observations:
        values = predicate_values(pred, obs["tokens"])
        for i in body(obs):
            xs.append(values[i])
            ys.append(float(obs["acts"][i]))
    n = len(xs)
    if n == 0:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return round(sxy / (sxx * syy) ** 0.5, 4) if sxx > 0 and syy > 0 else 0.0


def context_detection(pred: dict | None, observations: list[dict]) -> float | None:
    """Balanced accuracy of `pred` as a detector of the contexts where the feature fires: a context is
    predicted to fire when the predicate holds (on any tier) at one of its read positions, and fires
    when one of its read activations is above 0. What the offline detection scorer measures on held-out
    activating and non-activating contexts. None without a predicate or unless both kinds occur."""
    if pred is None:
        return None
    said = [any(predicate_mask(pred, obs["tokens"])[i] for i in body(obs)) for obs in observations]
    fires = [any(obs["acts"][i] > 0 for i in body(obs)) for obs in observations]
    balanced = classification_scores(said, fires)["balanced_accuracy"]
    return None if balanced is None else round(balanced, 4)


def classification_scores(predicted: Sequence[bool], actual: Sequence[bool]) -> dict:
    """Accuracy, F1 (positive class = activating / correctly marked) and balanced accuracy.

    Each is None when undefined: accuracy with no items, F1 when there is neither a real
    nor a predicted positive, balanced accuracy unless both classes occur in `actual`.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predictions for {len(actual)} items")
    tp = sum(bool(p) and bool(a) for p, a in zip(predicted, actual))
    fp = sum(bool(p) and not a for p, a in zip(predicted, actual))
    fn = sum((not p) and bool(a) for p, a in zip(predicted, actual))
    tn = len(actual) - tp - fp - fn
    n = len(actual)
    pos, neg = tp + fn, tn + fp
    return {
        "accuracy": (tp + tn) / n if n else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "balanced_accuracy": (tp / pos + tn / neg) / 2 if pos and neg else None,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": n,
    }


def token_stats(observations: list[dict], threshold: float) -> dict[str, dict]:
    """Per normalised token: how often seen, how often active, and its activation mass."""
    stats: dict[str, dict] = defaultdict(lambda: {"seen": 0, "active": 0, "mass": 0.0})
    for obs in observations:
        for i in body(obs):
            key = norm_token(obs["tokens"][i])
            if not key:
                continue
            s = stats[key]
            s["seen"] += 1
            s["active"] += obs["acts"][i] >= threshold
            s["mass"] += max(obs["acts"][i], 0.0)
    return dict(stats)


def occurrence_stats(observations: list[dict], threshold: float) -> dict[str, dict]:
    """Per tested token: how the feature responded where that token occurs in corpus contexts sampled
    for it (observations carrying a `token`, the occurrence tests), not in contexts chosen because the
    feature fired there. {token: {"n": occurrences, "active": at or above `threshold`, "fires": above
    0 (what detection calls firing), "mean": mean normalised activation}}."""
    stats: dict[str, dict] = {}
    for obs in observations:
        want = obs.get("token")
        if not want:
            continue
        s = stats.setdefault(want, {"n": 0, "active": 0, "fires": 0, "mean": 0.0})
        for i in body(obs):
            if norm_token(obs["tokens"][i]) == want:
                s["n"] += 1
                s["active"] += obs["acts"][i] >= threshold
                s["fires"] += obs["acts"][i] > 0
                s["mean"] += obs["acts"][i]
    for s in stats.values():
        s["mean"] = round(s["mean"] / s["n"], 4) if s["n"] else 0.0
    return stats


def trigger_tokens(
    observations: list[dict], threshold: float, coverage: float = 0.8, limit: int = 12
) -> list[tuple[str, float]]:
    """Tokens carrying `coverage` of the activation mass on active positions, largest first."""
    mass: Counter = Counter()
    for obs in observations:
        for i in body(obs):
            if obs["acts"][i] >= threshold and norm_token(obs["tokens"][i]):
                mass[norm_token(obs["tokens"][i])] += obs["acts"][i]
    total = sum(mass.values()) or 1.0
    out, acc = [], 0.0
    for tok, m in mass.most_common(limit):
        out.append((tok, round(m / total, 4)))
        acc += m / total
        if acc >= coverage:
            break
    return out


def preceding_tokens(
    observations: list[dict], threshold: float, window: int = 2, limit: int = 8
) -> list[tuple[str, float]]:
    """Tokens most often found within `window` before an active position (never the sink),
    with their share of active positions."""
    counts: Counter = Counter()
    n_active = 0
    skip = skip_positions()
    for obs in observations:
        for i in body(obs):
            if obs["acts"][i] < threshold:
                continue
            n_active += 1
            # each token once, in text order: a set would order ties in `most_common` by string hash,
            # which differs from process to process (an explanation must not depend on which one ran it)
            seen = dict.fromkeys(norm_token(obs["tokens"][j]) for j in range(max(skip, i - window), i))
            counts.update(t for t in seen if t)
    return [(t, round(c / max(n_active, 1), 4)) for t, c in counts.most_common(limit)]


def structure_shares(observations: list[dict], threshold: float) -> dict[str, float]:
    """Share of active tokens that have each structural property."""

    n, hits = 0, Counter()
    for obs in observations:
        for i in body(obs):
            if obs["acts"][i] >= threshold:
                n += 1
                tok = obs["tokens"][i]
                hits.update(p for p, fn in STRUCTURAL.items() if fn(tok))
    return {p: round(hits[p] / n, 4) if n else 0.0 for p in STRUCTURAL}


def probe_verdict(expect: str, normalized_max: float, threshold: float) -> bool:
    """Whether a probe's result agrees with its expectation
    ("high": reaches the threshold; "low": stays below)."""
    return (normalized_max >= threshold) == (expect == "high")
