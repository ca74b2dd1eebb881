"""Reports over score records: per-metric mean, 95% bootstrap CI and paired win rates, as a
markdown table, a JSON summary and a PNG of the score distributions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sage.evaluation.metrics import (
    always_fires_scores,
    bootstrap_ci,
    defined,
    mean_defined,
    paired_win_rate,
    truth_from_counts,
)
from sage.evaluation.run import METRIC_GROUPS

#: metric -> its group (a group's "not computed" reason explains each of its metrics)
GROUP_OF = {k: g for g, ks in METRIC_GROUPS.items() for k in ks}


def latest_scores(records: Sequence[dict]) -> dict[str, dict[int, dict]]:
    """method -> feature -> its last score record."""
    out: dict[str, dict[int, dict]] = {}
    for r in records:
        out.setdefault(r["method"], {})[int(r["feature"])] = r
    return out


def pairs(methods: Sequence[str]) -> list[tuple[str, str]]:
    """Comparisons (A, B): each method against every method listed before it, the last-listed method
    (SAGE, after its baselines) first."""
    return [(methods[i], methods[j]) for i in reversed(range(len(methods))) for j in range(i)]


def summarize(records: Sequence[dict], methods: Sequence[str], keys: Sequence[str], seed: int = 0) -> dict:
    """Per metric: each method's mean, 95% CI and count, its failures, the paired win rates, the scorer
    behind the numbers, and why values are left out.

    Every method is averaged over the same features: a failed explanation carries the metric's floor
    (sage/evaluation/run.py), so only features whose held-out data cannot support the metric (the
    same for every method) are left out. Win rates use every feature where both methods have a number.
    """
    by = latest_scores(records)
    features = sorted({f for m in methods for f in by.get(m, {})})
    out = {"features": len(features), "methods": list(methods), "metrics": {}, "failures": {}}
    for m in methods:
        failed = [f for f in features if by.get(m, {}).get(f, {}).get("failures") or f not in by.get(m, {})]
        out["failures"][m] = {"features": len(failed), "explanation_errors": _errors(by.get(m, {}), features)}
    for key in keys:
        column = {
            m: [by.get(m, {}).get(f, {}).get("metrics", {}).get(key) for f in features] for m in methods
        }
        scorers = sorted(
            {
                r.get("scorer_kind") or r.get("scorer", "")
                for m in methods
                for r in by.get(m, {}).values()
                if r.get("metrics", {}).get(key) is not None
            }
        )
        entry = {"methods": {}, "win_rates": {}, "scorer": scorers}
        for m in methods:
            ci = bootstrap_ci(column[m], seed=seed)
            recs = by.get(m, {})
            reasons = Counter(
                _reason(recs[f], key)
                for f in features
                if f in recs and recs[f].get("metrics", {}).get(key) is None
            )
            failures = Counter(
                _failure(recs[f], key) for f in features if f in recs and _failure(recs[f], key)
            )
            entry["methods"][m] = {
                "mean": mean_defined(column[m]),
                "ci95": list(ci) if ci else None,
                "n": len(defined(column[m])),
                "failures": sum(failures.values()),
                "failure_reasons": dict(failures),
                "not_computed": dict(reasons),
            }
        for a, b in pairs(methods):
            entry["win_rates"][f"{a} vs {b}"] = paired_win_rate(column[a], column[b])
        always = _always_fires(by, methods, features, key)
        if always is not None:
            entry["always_fires"] = always
        out["metrics"][key] = entry
    return out


def _always_fires(
    by: dict[str, dict[int, dict]], methods: Sequence[str], features: Sequence[int], key: str
) -> float | None:
    """Mean over `features` of what answering "fires" to every item scores on the classification
    metric `key` (detection, fuzzing), from the items' truth a score record keeps; None for other
    metrics. Every method is scored on the same items, so any record with the counts will do."""
    group = GROUP_OF.get(key, "")
    stat = key[len(group) + 1 :]
    if group not in ("detection", "fuzzing"):
        return None
    values = []
    for f in features:
        truths = (
            truth_from_counts(by.get(m, {}).get(f, {}).get("details", {}).get(group) or {}) for m in methods
        )
        truth = next((t for t in truths if t), None)
        values.append(always_fires_scores(truth)[stat] if truth else None)
    return mean_defined(values)


def _errors(recs: dict[int, dict], features: Sequence[int]) -> int:
    return sum(1 for f in features if "error" in recs.get(f, {"error": "no record"}))


def _failure(rec: dict, key: str) -> str:
    """Why `rec` scored the floor on `key` ('' when it did not)."""
    fails = rec.get("failures", {})
    return fails.get(key) or fails.get(GROUP_OF.get(key, ""), "")


def _reason(rec: dict, key: str) -> str:
    nc = rec.get("not_computed", {})
    return nc.get(key) or nc.get(GROUP_OF.get(key, ""), "not scored")


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def win_rate_cell(w: dict | None) -> str:
    """A `paired_win_rate` result as the report shows it: `rate (wins/ties/losses)`, "—" for None."""
    return "—" if w is None else f"{w['win_rate']:.2f} ({w['wins']}/{w['ties']}/{w['losses']})"


def markdown_table(summary: dict, title: str = "") -> str:
    """The summary as markdown: one row per metric; per method `mean [95% CI] (n, failures)`; per pair
    `win rate (wins/ties/losses)`; the scorer behind each row; then failures and left-out values."""
    methods = summary["methods"]
    comps = [f"{a} vs {b}" for a, b in pairs(methods)]
    head = ["metric", *methods, *(f"win rate {c}" for c in comps)]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes, fails, scorers = [], [], {}
    for key, entry in summary["metrics"].items():
        cells = [key]
        for m in methods:
            e = entry["methods"][m]
            if e["mean"] is None:
                cells.append("not computed")
            else:
                ci = e["ci95"]
                cells.append(
                    f"{_fmt(e['mean'])} [{_fmt(ci[0])}, {_fmt(ci[1])}] (n={e['n']}, failed {e['failures']})"
                )
            for reason, count in e["not_computed"].items():
                notes.append(f"- {key}, {m}: left out for {count} feature(s): {reason}")
            for reason, count in e["failure_reasons"].items():
                fails.append(f"- {key}, {m}: floor scored for {count} feature(s): {reason}")
        for c in comps:
            w = entry["win_rates"][c]
            cells.append(win_rate_cell(w))
        lines.append("| " + " | ".join(cells) + " |")
        for k in entry.get("scorer", []):
            scorers.setdefault(k, []).append(key)
    lines += [
        "",
        f"{summary['features']} features, the same for every method. A failed explanation (no explanation, "
        "no predicate, a predicate that matches nothing, a constant prediction, a scorer miscount or error) "
        "scores the metric's floor: 0 for accuracies and correlations, 0.5 for balanced accuracy, the "
        "negatives' share for accuracy. Mean with its 95% percentile-bootstrap CI; win rate = (wins + "
        "ties/2) / features where both methods have a number, shown with wins/ties/losses.",
        "",
        *_always_fires_line(summary),
        "Failures per method (features with at least one floored metric; explanation errors): "
        + ", ".join(
            f"{m} {f['features']} ({f['explanation_errors']} errors)" for m, f in summary["failures"].items()
        ),
    ]
    if scorers:
        lines += ["", "Scorers:", *(f"- {k}: {', '.join(v)}" for k, v in scorers.items())]
    if fails:
        lines += ["", "Floors scored:", *sorted(set(fails))]
    if notes:
        lines += ["", "Left out (the data cannot support the metric, for every method):", *sorted(set(notes))]
    return "\n".join(lines) + "\n"


def _always_fires_line(summary: dict) -> list[str]:
    """The report's line on what saying "fires" to every item scores, with a blank line after it;
    nothing when no classification metric was scored."""
    refs = {k: e["always_fires"] for k, e in summary["metrics"].items() if e.get("always_fires") is not None}
    if not refs:
        return []
    scores = ", ".join(f"{k} {v:.3f}" for k, v in refs.items())
    return [
        f'For scale, answering "fires" to every item, with no explanation, scores: {scores}. '
        "F1 ignores the silent items a method gets right, so it rewards saying yes more often.",
        "",
    ]


def plot_distributions(
    records: Sequence[dict], methods: Sequence[str], keys: Sequence[str], path: Path, title: str = ""
) -> Path | None:
    """A PNG with one panel per metric that has values: per method, a box plot of the per-feature scores
    with the points over it. Returns the path, or None when no metric has any value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by = latest_scores(records)
    panels = []
    for key in keys:
        data = [defined([r.get("metrics", {}).get(key) for r in by.get(m, {}).values()]) for m in methods]
        if any(data):
            panels.append((key, data))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (key, data) in zip(axes.flat, panels):
        shown = [d if d else [np.nan] for d in data]
        ax.boxplot(shown, showfliers=False)
        for i, d in enumerate(data, 1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(d)), d, s=10, alpha=0.6)
        ax.set_xticks(range(1, len(methods) + 1), [f"{m}\n(n={len(d)})" for m, d in zip(methods, data)])
        ax.set_title(key, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
