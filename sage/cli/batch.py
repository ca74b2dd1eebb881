"""`sage batch`: explain many features; resumable JSONL output."""

from __future__ import annotations

import random
from pathlib import Path

from sage.cli.common import (
    add_corpus_arg,
    add_ray_args,
    add_subject_args,
    cluster_from,
    print_json,
    session_opener,
)
from sage.cli.explain import add_explainer_args
from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="explain a list of features (resumable, concurrent, budgeted)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--features", help="comma-separated feature indices")
    g.add_argument("--features-file", type=Path, help="file with one feature index per line")
    g.add_argument("--random", type=int, metavar="N", help="N random features")
    p.add_argument("--seed", type=int, default=0, help="seed for --random")
    p.add_argument("--out", type=Path, required=True, help="results JSONL (one explanation per line)")
    p.add_argument("--concurrency", type=int, default=1, help="features at once (per Ray worker with --ray)")
    p.add_argument("--resume", action="store_true", help="skip features already done in --out")
    add_subject_args(p)
    add_corpus_arg(p)
    add_explainer_args(p)
    add_ray_args(p)
    p.set_defaults(func=run)


def parse_features(args, subject) -> list[int]:
    """Feature list from --features / --features-file / --random N --seed S (only --random reads the
    subject's width: a Neuronpedia subject learns it from the server)."""
    try:
        if args.features:
            return [int(x) for x in args.features.split(",") if x.strip()]
        if args.features_file:
            if not args.features_file.exists():
                raise ConfigError(f"--features-file {args.features_file} does not exist")
            return [int(x) for x in args.features_file.read_text().split() if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"feature indices must be integers: {exc}") from exc
    d_sae = subject.d_sae
    if args.random > d_sae:
        raise ConfigError(f"--random {args.random} is more than the SAE's {d_sae} features")
    return sorted(random.Random(args.seed).sample(range(d_sae), args.random))


def explainers(args, cluster):
    """Ray workers for `explain_batch(executor=...)` (a context manager), or a null context without --ray."""
    from contextlib import nullcontext

    if cluster is None:
        return nullcontext()
    from sage.distributed.batch import RayExplainers

    return RayExplainers(session_opener(args), cluster, args.concurrency)


def run(args) -> int:
    from sage.runs import Session, explain_batch

    cluster = cluster_from(args)  # a missing Ray fails before anything loads
    session = Session.open(
        args.model, args.sae, args.corpus, args.explainer, args.dtype, args.subject, device=args.device
    )
    features = parse_features(args, session.subject)
    if args.out.exists() and not args.resume:  # before starting workers (explain_batch says it again)
        raise ConfigError(f"{args.out} exists: pass --resume to continue it, or choose another --out")
    with explainers(args, cluster) as executor:
        summary = explain_batch(
            features,
            args.out,
            session=session,
            concurrency=args.concurrency,
            resume=args.resume,
            executor=executor,
            max_rounds=args.max_rounds,
            budget_usd=args.budget_usd,
            max_llm_tokens=args.max_llm_tokens,
        )
    print_json(summary)
    return 0 if summary["failed"] == 0 else 1
