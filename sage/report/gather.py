"""View models of the report (pure): the index rows and one feature page, built from records as read.

Nothing here computes an activation or a score: heat-map values are the activations stored in the
explanation's evidence or the activation store, and every number shown is a field of a record.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.report import heatmap
from sage.report.histogram import layout
from sage.report.inputs import CompareRun, ReportInputs
from sage.report.settings import REPORT, ReportConfig
from sage.report.store_data import StoreFeature

#: hypothesis statuses in the order the index sorts them
STATUS_ORDER = ("confirmed", "refined", "open", "refuted", "dead", "error")


def page_name(feature: int) -> str:
    """The file of a feature's page, relative to the site's root."""
    return f"features/{feature}.html"


def best_hypothesis(rec: dict) -> dict | None:
    """The hypothesis behind the explanation: the one whose predicate is the explanation's, else the
    one with the highest F1 in `scores` (None when there is no hypothesis)."""
    hyps = rec.get("hypotheses") or []
    if rec.get("predicate") is not None:
        for h in hyps:
            if h.get("predicate") == rec["predicate"]:
                return h
    scored = [(rec.get("scores", {}).get(f"{h['id']}_f1"), h) for h in hyps]
    scored = [(s, h) for s, h in scored if s is not None]
    if scored:
        return max(scored, key=lambda sh: sh[0])[1]
    return hyps[0] if hyps else None


def status_of(rec: dict) -> str:
    """One word for the index: error, dead (never fires), or the best hypothesis's status."""
    if "error" in rec:
        return "error"
    best = best_hypothesis(rec)
    if best is None:
        return "dead" if rec.get("feature", {}).get("max_activation", 0) <= 0 else "open"
    return best["status"]


def choose_method(scores: dict[int, dict[str, dict]], preferred: str | None) -> str | None:
    """The score records' method the index shows: `preferred` when present, else the only one,
    else the most common (None without score records)."""
    counts: dict[str, int] = {}
    for by_method in scores.values():
        for m in by_method:
            counts[m] = counts.get(m, 0) + 1
    if not counts:
        return None
    if preferred in counts:
        return preferred
    return max(sorted(counts), key=counts.__getitem__)


def metric_names(scores: dict[int, dict[str, dict]], method: str | None) -> list[str]:
    """Every metric name any record of `method` carries, in first-seen order."""
    names: dict[str, None] = {}
    for by_method in scores.values():
        for k in by_method.get(method, {}).get("metrics", {}):
            names[k] = None
    return list(names)


def snippet(heat_map: dict | None, radius: int) -> list[heatmap.Cell]:
    """The cells within `radius` tokens of a heat-map's peak (sinks left out): the index's example."""
    if not heat_map or heat_map["peak"] is None:
        return []
    cells = heat_map["cells"]
    i = cells.index(heat_map["peak"])
    return [c for c in cells[max(0, i - radius) : i + radius + 1] if not c.is_sink]


def index_rows(
    inputs: ReportInputs,
    method: str | None,
    metrics: Sequence[str],
    examples: dict[int, list[heatmap.Cell]] | None = None,
) -> list[dict]:
    """One row per feature: what the index table shows, each cell with a sort key; `examples`:
    feature -> the cells around the peak of its strongest corpus context (none without the store)."""
    rows = []
    for f, rec in inputs.explanations.items():
        best = best_hypothesis(rec) if "error" not in rec else None
        cost = rec.get("cost", {})
        scores = inputs.scores.get(f, {}).get(method, {}).get("metrics", {})
        rows.append(
            {
                "feature": f,
                "href": page_name(f),
                "label": " | ".join(rec.get("labels", [])) or rec.get("error", ""),
                "example": (examples or {}).get(f, []),
                "status": status_of(rec),
                "status_rank": STATUS_ORDER.index(status_of(rec)) if status_of(rec) in STATUS_ORDER else 99,
                "stop_reason": rec.get("stop_reason", ""),
                "precision": best.get("precision") if best else None,
                "recall": best.get("recall") if best else None,
                "scores": [scores.get(k) for k in metrics],
                "rounds": rec.get("rounds"),
                "probes": cost.get("probes", len(rec.get("evidence", [])) if "error" not in rec else None),
                "tokens": cost["input_tokens"] + cost["output_tokens"] if cost else None,
                "usd": cost.get("usd"),
            }
        )
    return rows


def compare_summary(run: CompareRun | None) -> dict | None:
    """The compare folder's per-metric table: [{"metric", "cells": [{"method", "mean", "ci", "n"}]}]."""
    if run is None:
        return None
    methods = run.summary.get("methods", [])
    rows = []
    for key, entry in run.summary.get("metrics", {}).items():
        cells = []
        for m in methods:
            e = entry.get("methods", {}).get(m, {})
            cells.append({"method": m, "mean": e.get("mean"), "ci": e.get("ci95"), "n": e.get("n")})
        rows.append({"metric": key, "cells": cells, "win_rates": entry.get("win_rates", {})})
    return {"methods": methods, "rows": rows, "features": run.summary.get("features")}


# -- a feature page ---------------------------------------------------------------------------------
def heat(tokens, acts, max_act: float, sinks, label: str, cfg: ReportConfig) -> dict:
    """A heat-map block: its label and cells (values as given)."""
    cells = heatmap.cells(tokens, acts, max_act, sinks, cfg.n_buckets, cfg.decimals)
    peak = next((c for c in cells if c.is_max), None)
    return {"label": label, "cells": cells, "peak": peak}


def probe_groups(rec: dict, max_act: float, cfg: ReportConfig) -> list[dict]:
    """The evidence grouped by hypothesis (in the hypotheses' order), each probe with its heat-map
    when the record kept the per-token activations."""
    hyps = {h["id"]: h for h in rec.get("hypotheses", [])}
    groups: dict[str, list[dict]] = {hid: [] for hid in hyps}
    for e in rec.get("evidence", []):
        hid = e.get("hypothesis_id") or next(iter(e.get("supports", []) + e.get("refutes", [])), "?")
        agrees = hid in e.get("supports", [])
        probe = {
            **{
                k: e.get(k) for k in ("probe_id", "text", "purpose", "source", "round", "expect", "max_token")
            },
            "max_activation": e["max_activation"],
            "normalized": e["normalized"],
            "verdict": "as predicted" if agrees else "against the prediction",
            "agrees": agrees,
            "heat": None,
        }
        if e.get("tokens") and e.get("activations") is not None:
            probe["heat"] = heat(
                e["tokens"], e["activations"], max_act, e.get("sink_positions") or [], "", cfg
            )
        groups.setdefault(hid, []).append(probe)
    return [
        {"hypothesis": hyps.get(hid, {"id": hid, "text": "(unknown hypothesis)"}), "probes": probes}
        for hid, probes in groups.items()
        if probes
    ]


def _successes(rec: dict, metric: str) -> tuple[int, int] | None:
    """(successes, trials) behind an accuracy in a score record's details, or None when the record does
    not give them: detection / fuzzing accuracy are (tp + tn) of n items; generative / retrieval accuracy
    the texts that reached the threshold, of all texts."""
    details = rec.get("details", {})
    if metric in ("detection_accuracy", "fuzzing_accuracy"):
        d = details.get(metric.split("_")[0], {})
        if {"tp", "tn", "n"} <= d.keys():
            return d["tp"] + d["tn"], d["n"]
    if metric in ("generative_accuracy", "retrieval_accuracy"):
        d = details.get("generative", {})
        if "texts" in d and "threshold" in d:
            return sum(t["max_activation"] >= d["threshold"] for t in d["texts"]), len(d["texts"])
    return None


def accuracy_ci(rec: dict, metric: str, confidence: float = 0.95) -> tuple[float, float, int] | None:
    """Wilson score interval (scipy) of one feature's accuracy over its held-out items, with n; None for
    other metrics, or when the counts in the details do not give back the recorded value (score
    records round to 6 places)."""
    from scipy.stats import binomtest

    counts = _successes(rec, metric)
    value = rec.get("metrics", {}).get(metric)
    if counts is None or value is None or counts[1] == 0 or abs(counts[0] / counts[1] - value) > 5e-6:
        return None
    ci = binomtest(counts[0], counts[1]).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high), counts[1]


def feature_scores(f: int, inputs: ReportInputs) -> list[dict]:
    """Score records of the feature, per method: [{"method", "source", "metrics": [{"name", "value", "ci",
    "across"}]}]. `ci`: an accuracy's 95% Wilson interval over this feature's held-out items (None for
    correlations and F1s, which are not proportions); `across`: the compare run's mean and 95% bootstrap
    CI over its features, for that method."""
    out = []
    ci_of = {}
    if inputs.compare is not None:
        for key, entry in inputs.compare.summary.get("metrics", {}).items():
            for m, e in entry.get("methods", {}).items():
                ci_of[(m, key)] = (e.get("mean"), e.get("ci95"))
    for source, by_method in (
        ("eval", inputs.scores.get(f, {})),
        ("compare", inputs.compare.scores.get(f, {}) if inputs.compare else {}),
    ):
        for m, rec in by_method.items():
            metrics = [
                {
                    "name": k,
                    "value": v,
                    "ci": accuracy_ci(rec, k),
                    "across": ci_of.get((m, k)) if source == "compare" else None,
                }
                for k, v in rec.get("metrics", {}).items()
            ]
            out.append({"method": m, "source": source, "scorer": rec.get("scorer", ""), "metrics": metrics})
    return out


def feature_page(
    rec: dict,
    inputs: ReportInputs,
    store: StoreFeature | None = None,
    vocab: dict | None = None,
    cfg: ReportConfig = REPORT,
) -> dict:
    """Everything one feature's page shows."""
    f = int(rec["feature"]["index"])
    if "error" in rec:
        return {"feature": f, "error": rec["error"], "record": rec}
    max_act = store.max_activation if store else rec["feature"]["max_activation"]
    page = {
        "feature": f,
        "error": None,
        "record": rec,
        "status": status_of(rec),
        "best": best_hypothesis(rec),
        "max_activation": max_act,
        "frequency": store.frequency if store else rec["feature"].get("frequency"),
        "mean_activation": store.mean_activation if store else None,
        "legend": heatmap.legend(max_act, cfg.n_buckets, cfg.decimals),
        "top": [],
        "quantiles": [],
        "histogram": None,
        "n_contexts": store.n_contexts if store else None,
        "vocab": vocab,
        "hypotheses": rec.get("hypotheses", []),
        "groups": probe_groups(rec, max_act, cfg),
        "steering": inputs.steering.get(f, []),
        "scores": feature_scores(f, inputs),
        "cost": rec.get("cost", {}),
        "timings": sorted(rec.get("timings", {}).items(), key=lambda kv: -kv[1]),
    }
    if store is not None:
        page["top"] = [heat(c["tokens"], c["acts"], max_act, c["sinks"], c["label"], cfg) for c in store.top]
        page["quantiles"] = [
            heat(c["tokens"], c["acts"], max_act, c["sinks"], c["label"], cfg) for c in store.quantiles
        ]
        page["histogram"] = layout(store.context_maxima, cfg.histogram_bins, max_act)
    return page
