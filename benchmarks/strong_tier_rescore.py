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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--metrics", default="generative,predictive")
    args = ap.parse_args(argv)

    from benchmarks.rescore import open_run, print_win_rates, recorded_occurrences, rescore
    from sage.hypotheses.tiers import demote_below, strong_level

    expl, scores, store, scorer, s, groups, keys = open_run(args.out_dir, args.metrics)
    after = {}
    for f, e in sorted(expl["sage"].items()):
        pred = e.get("predicate")
        if not pred or "error" in e:
            continue
        top = store.top(f, s.n_top)
        level = strong_level([c.max_act / e["feature"]["max_activation"] for c in top])
        occurrences = recorded_occurrences(e, s.active_threshold)
        new, moved = demote_below(pred, occurrences, level, s.min_occurrences)
        if not moved:
            continue
        after[f] = rescore(store, expl, f, {**e, "predicate": new}, scorer, groups)
        changes = {k: (scores[(f, "sage")].get(k), after[f].get(k)) for k in keys}
        print(f"{f}: moved {moved} (level {level:.2f}): {changes}", flush=True)
    print_win_rates(keys, expl, scores, after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
