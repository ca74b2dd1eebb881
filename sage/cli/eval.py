"""`sage eval`: score the explanations of a results JSONL (from `sage batch`) on held-out data."""

from __future__ import annotations

from pathlib import Path

from sage.cli.common import add_corpus_arg, add_subject_args, source_from
from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="score explanations: generative / predictive accuracy, detection, fuzzing, simulation"
    )
    p.add_argument(
        "--results", type=Path, required=True, help="results JSONL of `sage batch` (one explanation a line)"
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated: generative,predictive,detection,fuzzing,simulation,intervention "
        "(default: all)",
    )
    p.add_argument(
        "--scorer",
        default="offline",
        help="offline (default: the explanation's predicate + corpus retrieval), openai:MODEL, "
        "anthropic:MODEL, openai-compatible:BASE_URL:MODEL, hf:MODEL",
    )
    p.add_argument("--out", type=Path, required=True, help="score records JSONL (one per explanation)")
    p.add_argument("--resume", action="store_true", help="skip explanations already scored in --out")
    p.add_argument(
        "--method",
        default=None,
        help="name for these explanations in the records and the table (default: the results file's name)",
    )
    add_subject_args(p)
    add_corpus_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.evaluation.report import markdown_table, summarize
    from sage.evaluation.run import evaluate_results, metric_keys, parse_metrics
    from sage.evaluation.scorers import make_scorer

    groups = parse_metrics(args.metrics)
    if not args.results.exists():
        raise ConfigError(f"--results {args.results} does not exist")
    store = source_from(args)
    scorer = make_scorer(args.scorer, store)
    method = args.method or args.results.stem
    records = evaluate_results(
        args.results, args.out, store=store, scorer=scorer, groups=groups, method=method, resume=args.resume
    )
    records = [r for r in records if r["method"] == method]
    print(
        markdown_table(
            summarize(records, [method], metric_keys(groups, scorer)), title=f"{method}, scorer {scorer.name}"
        )
    )
    print(f"score records: {args.out}")
    return 0
