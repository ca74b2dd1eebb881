"""Shared by the re-scoring benchmarks: read a finished `sage compare` folder, score changed SAGE
explanations again on the same held-out data, and print SAGE's paired win rates before and after."""

from __future__ import annotations

import glob
from pathlib import Path


def load_run(out_dir: Path) -> tuple[dict[str, dict[int, dict]], dict[tuple[int, str], dict]]:
    """(explanations {method: {feature: record}}, scores {(feature, method): metrics}) of a compare
    folder."""
    from sage.io import read_jsonl

    expl: dict[str, dict[int, dict]] = {}
    for path in glob.glob(str(out_dir / "explanations_*.jsonl")):
        method = Path(path).stem.removeprefix("explanations_")
        for rec in read_jsonl(Path(path)):
            expl.setdefault(method, {})[rec["feature"]["index"]] = rec
    scores = {(r["feature"], r["method"]): r["metrics"] for r in read_jsonl(out_dir / "scores.jsonl")}
    return expl, scores


def open_run(out_dir: Path, metrics: str):
    """What a re-scoring needs: (explanations, scores, store, offline scorer, AgentConfig(), metric
    groups, metric keys) for a compare folder and a comma-separated list of metric groups."""
    from agents.runtime import AgentConfig
    from sage.evaluation.run import metric_keys
    from sage.evaluation.scorers import OfflineScorer
    from sage.runs import Session

    expl, scores = load_run(out_dir)
    store = Session.open(mine=False).store
    scorer = OfflineScorer(store)
    groups = metrics.split(",")
    return expl, scores, store, scorer, AgentConfig(), groups, metric_keys(groups, scorer)


def recorded_occurrences(record: dict, threshold: float) -> dict:
    """`sage.hypotheses.scoring.occurrence_stats` of an explanation record's evidence (its raw
    activations normalised by the feature's max, as the loop read them)."""
    from sage.hypotheses.scoring import normalise, occurrence_stats

    mx = record["feature"]["max_activation"]
    evidence = [{**x, "acts": normalise(x["activations"] or [], mx)} for x in record["evidence"]]
    return occurrence_stats(evidence, threshold)


def rescore(store, expl: dict, feature: int, record: dict, scorer, groups: list[str]) -> dict:
    """The metrics of SAGE's explanation `record` of `feature` on the held-out data the compare used."""
    from sage.evaluation.data import evidence_texts, held_out
    from sage.evaluation.run import score_explanation

    held = held_out(store, feature, exclude_texts=evidence_texts(expl[m].get(feature) for m in expl))
    return score_explanation(record, held, scorer, store.engine, groups, method="sage")["metrics"]


def print_win_rates(keys: list[str], expl: dict, scores: dict, after: dict[int, dict]) -> None:
    """For each metric: SAGE's mean and paired win rate against every other method, before -> after
    (`after`: the changed features' new metrics; the others keep theirs)."""
    from sage.evaluation.metrics import paired_win_rate
    from sage.evaluation.report import win_rate_cell

    feats = sorted({f for f, _ in scores})
    print(f"{len(after)} of {len(feats)} features changed")
    for k in keys:
        before = [scores[(f, "sage")].get(k) for f in feats]
        now = [after.get(f, scores[(f, "sage")]).get(k) for f in feats]
        means = [
            sum(x for x in v if x is not None) / max(1, sum(x is not None for x in v)) for v in (before, now)
        ]
        print(f"{k}: SAGE's mean {means[0]:.3f} -> {means[1]:.3f}")
        for other in [m for m in expl if m != "sage"]:
            theirs = [scores[(f, other)].get(k) for f in feats]
            was, now_ = (win_rate_cell(paired_win_rate(x, theirs)) for x in (before, now))
            print(f"  vs {other}: {was} -> {now_}")
