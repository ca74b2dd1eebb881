"""Re-score a finished `sage compare` run as if its conclusions had held the strong tier to SAGE's
strong level (`sage.hypotheses.tiers`, `AgentConfig.strong_tier_at_conclusion`).

The rule changes only the final predicate's tiers, after every verdict of the loop, so a run made
before it can be measured with it: each SAGE explanation's final token set is re-tiered with the
run's own occurrence tests (the explanation's recorded evidence) and scored again by the offline
scorer on the same held-out data. (The loop itself re-tiers every hypothesis before the conclusion
ranks them, which can change a pick in rare cases; this script re-tiers the pick.) Prints the
changed features and SAGE's paired win rates against each baseline, before and after.

    python benchmarks/strong_tier_rescore.py OUT_DIR [--metrics generative,predictive]
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--metrics", default="generative,predictive")
    args = ap.parse_args(argv)

    from agents.runtime import AgentConfig
    from sage.evaluation.data import evidence_texts, held_out
    from sage.evaluation.metrics import paired_win_rate
    from sage.evaluation.report import win_rate_cell
    from sage.evaluation.run import metric_keys, score_explanation
    from sage.evaluation.scorers import OfflineScorer
    from sage.hypotheses.scoring import normalise, occurrence_stats
    from sage.hypotheses.tiers import demote_below, strong_level
    from sage.io import read_jsonl
    from sage.runs import Session

    expl: dict[str, dict[int, dict]] = {}
    for path in glob.glob(str(args.out_dir / "explanations_*.jsonl")):
        method = Path(path).stem.removeprefix("explanations_")
        for rec in read_jsonl(Path(path)):
            expl.setdefault(method, {})[rec["feature"]["index"]] = rec
    scores = {}
    for rec in read_jsonl(args.out_dir / "scores.jsonl"):
        scores[(rec["feature"], rec["method"])] = rec["metrics"]

    session = Session.open(mine=False)
    store, scorer, s = session.store, OfflineScorer(session.store), AgentConfig()
    groups = args.metrics.split(",")
    keys = metric_keys(groups, scorer)
    after = {}
    for f, e in sorted(expl["sage"].items()):
        pred = e.get("predicate")
        if not pred or "error" in e:
            continue
        top = store.top(f, s.n_top)
        mx = e["feature"]["max_activation"]
        level = strong_level([c.max_act / mx for c in top])
        evidence = [{**x, "acts": normalise(x["activations"] or [], mx)} for x in e["evidence"]]
        occurrences = occurrence_stats(evidence, s.active_threshold)
        new, moved = demote_below(pred, occurrences, level, s.min_occurrences)
        if not moved:
            continue
        held = held_out(store, f, exclude_texts=evidence_texts(expl[m].get(f) for m in expl))
        rec = score_explanation({**e, "predicate": new}, held, scorer, store.engine, groups, method="sage")
        after[f] = rec["metrics"]
        changes = {k: (scores[(f, "sage")].get(k), rec["metrics"].get(k)) for k in keys}
        print(f"{f}: moved {moved} (level {level:.2f}): {changes}", flush=True)
    feats = sorted({f for f, _ in scores})
    print(f"{len(after)} of {len(feats)} features changed")
    for k in keys:
        before = [scores[(f, "sage")].get(k) for f in feats]
        now = [after.get(f, scores[(f, "sage")]).get(k) for f in feats]
        for other in [m for m in expl if m != "sage"]:
            theirs = [scores[(f, other)].get(k) for f in feats]
            was, now_ = (win_rate_cell(paired_win_rate(x, theirs)) for x in (before, now))
            print(f"{k} vs {other}: {was} -> {now_}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
