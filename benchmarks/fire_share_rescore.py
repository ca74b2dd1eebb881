"""Re-score a finished `sage compare` run as if its conclusions had named, in the best hypothesis's
weak tier, the tested tokens the feature fires on (`sage.hypotheses.tiers.name_firing`,
`AgentConfig.fire_share_at_conclusion`).

The rule runs after every verdict of the loop and reads only the explanation's recorded evidence (its
occurrence tests), so a run made before it can be measured with it, at several shares: each SAGE
explanation whose final predicate is a token set gains the tested tokens it does not hold that fired
(above 0) at at least the share of their occurrences, and is scored again by the offline scorer on the
same held-out data. (The loop also keeps a second label's tokens out; the records do not say which
hypothesis that was, so this script does not.) Prints the changed features and SAGE's paired win
rates against each baseline, before and after, per share.

    python benchmarks/fire_share_rescore.py OUT_DIR [--shares 0.2,0.34,0.5] [--metrics ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--shares", default="0.2,0.34,0.5")
    ap.add_argument("--metrics", default="generative,predictive,detection,fuzzing")
    args = ap.parse_args(argv)

    from benchmarks.rescore import open_run, print_win_rates, recorded_occurrences, rescore
    from sage.hypotheses.tiers import name_firing

    expl, scores, store, scorer, s, groups, keys = open_run(args.out_dir, args.metrics)
    for share in map(float, args.shares.split(",")):
        print(f"== share {share}")
        after = {}
        for f, e in sorted(expl["sage"].items()):
            pred = e.get("predicate")
            if not pred or "error" in e:
                continue
            occurrences = recorded_occurrences(e, s.active_threshold)
            new, named = name_firing(pred, occurrences, share, s.min_occurrences)
            if not named:
                continue
            after[f] = rescore(store, expl, f, {**e, "predicate": new}, scorer, groups)
            print(f"{f}: named {named}", flush=True)
        print_win_rates(keys, expl, scores, after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
