"""`sage select`: rank features for steering by Delta Token Confidence, or find them by explanation."""

from __future__ import annotations

import argparse

from sage.cli.common import add_subject_args, print_json, subject_from
from sage.errors import ConfigError
from sage.steering.select import DIRECTIONS, DTC


def add_parser(sub) -> None:
    p = sub.add_parser(
        "select",
        help="select features for steering (Delta Token Confidence or explanations)",
        description="Rank every SAE feature by Delta Token Confidence on a neutral prefix "
        "(arXiv 2510.03659), or find features whose explanations match a concept.",
    )
    add_subject_args(p)
    p.add_argument(
        "--criterion",
        choices=("dtc", "explanation"),
        default="dtc",
        help="dtc: rank all features; explanation: match --concept against --results / --vocab",
    )
    p.add_argument("--top", type=int, default=10, help="how many features to list (default 10)")
    p.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default="up",
        help="dtc: up = largest dTC first (edit makes the next token less certain), "
        "down = most negative first (edit makes a next token more certain); default up",
    )
    p.add_argument("--prefix", default=DTC.prefix, help=f"dtc: neutral prefix (default {DTC.prefix!r})")
    p.add_argument(
        "--alpha", type=float, default=DTC.alpha, help=f"dtc: amplification factor (default {DTC.alpha:g})"
    )
    p.add_argument(
        "--k", type=int, default=DTC.k, help=f"dtc: top-k tokens in the confidence (default {DTC.k})"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DTC.batch_size,
        help=f"dtc: features per forward pass (default {DTC.batch_size})",
    )
    p.add_argument("--concept", help="explanation: the concept to look for, e.g. 'French cities'")
    p.add_argument("--results", help="explanation: a `sage batch` results JSONL")
    p.add_argument("--vocab", action="store_true", help="explanation: also match MI vocabulary words")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    if args.criterion == "explanation":
        return _run_concept(args)
    if args.k < 1:
        raise ConfigError("--k must be at least 1")
    from sage.steering.select import dtc_scores

    subject = subject_from(args)
    scores = dtc_scores(subject, prefix=args.prefix, alpha=args.alpha, k=args.k, batch_size=args.batch_size)
    out = scores.to_dict(args.top, args.direction, subject.tokenizer)
    out.update(model=subject.model_id, sae=subject.sae_label, hook_name=subject.site.hook_name)
    if args.json:
        print_json(out)
        return 0
    print(
        f"Delta Token Confidence on {out['prefix']!r} ({out['n_features']} features, alpha={out['alpha']:g}, "
        f"k={out['k']}, {out['seconds']:.1f} s)"
    )
    print(
        f"unedited: C_k={out['c_base']:.4f}, next token {out['base_top_token']!r}; "
        f"edit size alpha*max code = {out['amplification']:.3f}"
    )
    print(f"{'rank':>4}  {'feature':>7}  {'dTC':>9}  {'C_int':>8}  next token")
    for r in out["features"]:
        print(f"{r['rank']:>4}  {r['feature']:>7}  {r['dtc']:>9.4f}  {r['c_int']:>8.4f}  {r['top_token']!r}")
    return 0


def _run_concept(args: argparse.Namespace) -> int:
    from sage.steering.select import select_by_concept

    if not args.concept:
        raise ConfigError("--criterion explanation needs --concept")
    subject = subject_from(args) if args.vocab else None
    matches = select_by_concept(
        args.concept, results=args.results, subject=subject, use_vocab=args.vocab, top=args.top
    )
    if args.json:
        print_json(
            {"criterion": "explanation", "concept": args.concept, "features": [m.to_dict() for m in matches]}
        )
        return 0
    if not matches:
        print(f"no feature matches {args.concept!r}")
        return 0
    print(f"{'feature':>7}  {'score':>5}  source        labels")
    for m in matches:
        print(f"{m.feature:>7}  {m.score:>5.2f}  {m.source:<12}  {'; '.join(m.labels)}")
    return 0
