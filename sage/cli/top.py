"""`sage top`: the contexts where a feature fires most, max-activating token marked."""

from __future__ import annotations

from sage.cli.common import add_corpus_arg, add_subject_args, print_json, source_from


def add_parser(sub) -> None:
    p = sub.add_parser("top", help="top-activating corpus contexts of a feature")
    p.add_argument("--feature", type=int, required=True)
    p.add_argument("--k", type=int, default=10)
    add_subject_args(p)
    add_corpus_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    store = source_from(args)
    store.subject.check_feature(args.feature)
    stats = store.feature_stats(args.feature)
    top = store.top(args.feature, args.k)
    if args.json:
        print_json(
            {
                "feature": args.feature,
                "max_activation": stats.max_activation,
                "frequency": stats.frequency,
                "mean_activation": stats.mean_activation,
                "contexts": [c.to_dict() for c in top],
            }
        )
        return 0
    print(f"feature {args.feature}: max {stats.max_activation:.3f}, fires on {stats.frequency:.4%} of tokens")
    if not top:
        print("  (never fires on this corpus)")
    for i, c in enumerate(top, 1):
        text = c.marked_text().replace("\n", "\\n")
        print(f"{i:>3}. {c.max_act:8.3f}  {text}")
    return 0
