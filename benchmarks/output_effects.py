"""Output effects of MI words: does amplifying a feature raise the log-probability of its MI words?

For `--features` random live features of the embedded model (SmolLM2-135M + the shipped SAE; the
feature draw is seeded), the feature is amplified (`sage.intervention.effects.EFFECTS`: the MI paper's
amplify edit, strength in multiples of the feature's max activation, every position after the sink)
on five neutral prompts, and the next-token log-probability shift of its top-`--top` words is
compared with that of matched control tokens (same leading-space form, length +-1, nearby BPE id;
`sage.intervention.effects.control_ids`). The rise is mean target shift minus mean control shift,
in nats, per feature. Three lists are measured on the same forwards: MI words by our variant, MI
words by the reference variant (`sage vocab --variant`), and the logit-lens tokens.

    python benchmarks/output_effects.py [--features 50] [--top 10] [--strengths 2,8] [--seed 0] [--json]

Prints, per list and strength: mean and median rise over features, the share of features whose
rise is positive, and the mean raw target shift; `--json` prints one object with per-feature rows.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace

import torch

LISTS = ("mi:ours", "mi:reference", "logitlens")


def _summary(rises: list[float], shifts: list[float]) -> dict:
    return {
        "n": len(rises),
        "mean_rise": round(statistics.fmean(rises), 4) if rises else None,
        "median_rise": round(statistics.median(rises), 4) if rises else None,
        "share_positive": round(sum(r > 0 for r in rises) / len(rises), 4) if rises else None,
        "mean_target_shift": round(statistics.fmean(shifts), 4) if shifts else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--strengths", default="2,8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import sage
    from sage.data.corpus import load_corpus
    from sage.intervention.effects import EFFECTS, feature_spec, next_logprobs, shifts_from
    from sage.store.activation_store import ActivationStore
    from sage.vocab.lookup import vocab_tables
    from sage.vocab.tables import VOCAB

    start = time.perf_counter()
    subject = sage.load_subject()
    store = ActivationStore(subject, load_corpus("default"))
    tables = {
        "mi:ours": vocab_tables(subject, VOCAB.for_variant("ours"), progress=False),
        "mi:reference": vocab_tables(subject, VOCAB.for_variant("reference"), progress=False),
    }
    live = [f for f in range(subject.d_sae) if store.feature_stats(f).max_activation > 0]
    features = sorted(random.Random(args.seed).sample(live, min(args.features, len(live))))
    strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
    prompts = EFFECTS.prompts
    base = next_logprobs(subject, prompts)
    rows = []
    for f in features:
        max_act = store.feature_stats(f).max_activation
        lists = {
            "mi:ours": ([w for w, _ in tables["mi:ours"].mi(f, args.top)], True),
            "mi:reference": ([w for w, _ in tables["mi:reference"].mi(f, args.top)], True),
            "logitlens": ([t for t, _ in tables["mi:ours"].logit_lens(f, args.top)], False),
        }
        for strength in strengths:
            settings = replace(EFFECTS, strength=strength)
            spec = feature_spec(f, max_act, settings)
            steered = next_logprobs(subject, prompts, spec)
            for name, (texts, words) in lists.items():
                eff = shifts_from(
                    subject, base, steered, spec, prompts, texts, words=words, settings=settings
                )
                shifts = [t.shift for t in eff.targets]
                rows.append(
                    {
                        "feature": f,
                        "list": name,
                        "strength": strength,
                        "rise": eff.rise,
                        "mean_shift": statistics.fmean(shifts) if shifts else None,
                        "texts": texts,
                    }
                )
        print(f"feature {f} done", file=sys.stderr)
    summary = {
        f"{name}@{s:g}": _summary(
            [r["rise"] for r in rows if r["list"] == name and r["strength"] == s and r["rise"] is not None],
            [r["mean_shift"] for r in rows if r["list"] == name and r["strength"] == s and r["mean_shift"]],
        )
        for s in strengths
        for name in LISTS
    }
    out = {
        "model": subject.model_id,
        "sae": subject.sae_label,
        "features": features,
        "top": args.top,
        "strategy": EFFECTS.strategy,
        "prompts": list(prompts),
        "n_controls": EFFECTS.n_controls,
        "summary": summary,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if args.json:
        print(json.dumps({**out, "rows": rows}, indent=1))
        return 0
    print(
        f"{len(features)} random live features (seed {args.seed}) of {out['model']} + {out['sae']}; "
        f"top {args.top} per list; {EFFECTS.strategy} on {len(prompts)} neutral prompts; "
        f"{EFFECTS.n_controls} matched controls per token; {out['seconds']} s"
    )
    print(f"{'list @ strength':<20}{'mean rise':>10}{'median':>9}{'rise > 0':>10}{'target shift':>14}")
    for key, s in summary.items():
        print(
            f"{key:<20}{s['mean_rise']:>10.3f}{s['median_rise']:>9.3f}{s['share_positive']:>10.0%}"
            f"{s['mean_target_shift']:>14.3f}"
        )
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
