"""`sage compare`: SAGE against the one-shot baseline, the no-probe ablation and the MI-vocabulary words,
scored on the same held-out data."""

from __future__ import annotations

from pathlib import Path

from sage.cli.common import add_corpus_arg, add_ray_args, add_subject_args, cluster_from
from sage.cli.explain import add_explainer_args
from sage.evaluation.methods import EXTRA_METHODS, METHODS
from sage.io import cache_key


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="explain features with SAGE and baselines, score all, write a table + plot (resumable)",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--features", help="comma-separated feature indices")
    g.add_argument("--features-file", type=Path, help="file with one feature index per line")
    g.add_argument("--random", type=int, metavar="N", help="N random features")
    p.add_argument("--seed", type=int, default=0, help="seed for --random")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {','.join(METHODS + EXTRA_METHODS)} (one-shot: one explainer call "
        "on the top token/activation pairs; no-probe: SAGE without experiments; mi: MI-vocabulary words; "
        "neuronpedia: Neuronpedia's own explanation, not in the default)",
    )
    p.add_argument(
        "--neuronpedia-results",
        type=Path,
        default=None,
        help="for --methods ...,neuronpedia on a local subject: Neuronpedia's explanations of this SAE, "
        "imported with `sage import` (a Neuronpedia --subject has its own)",
    )
    p.add_argument(
        "--scorer",
        default="offline",
        help="offline (default), openai:MODEL, anthropic:MODEL, openai-compatible:BASE_URL:MODEL, hf:MODEL",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated: generative,predictive,detection,fuzzing,simulation,intervention "
        "(default: all)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (explanations, scores, report.md, scores.png); re-run with the same "
        "arguments to resume (default: ./sage-compare-<feature selection>)",
    )
    add_subject_args(p)
    add_corpus_arg(p)
    add_explainer_args(p)
    add_ray_args(p)
    p.add_argument("--concurrency", type=int, default=1, help="features at once per Ray worker (with --ray)")
    p.set_defaults(func=run)


def default_out(args) -> Path:
    """A folder named after the feature selection, so that re-running the same command resumes it."""
    if args.random is not None:
        return Path(f"sage-compare-random{args.random}-seed{args.seed}")
    if args.features_file is not None:
        return Path(f"sage-compare-{args.features_file.stem}")
    digest = cache_key(args.features, length=8)
    return Path(f"sage-compare-features-{digest}")


def run(args) -> int:
    from sage.cli.batch import explainers, parse_features
    from sage.evaluation.compare import parse_methods, run_compare
    from sage.evaluation.run import parse_metrics
    from sage.runs import Session

    methods = parse_methods(args.methods)
    groups = parse_metrics(args.metrics)
    cluster = cluster_from(args)
    session = Session.open(
        args.model, args.sae, args.corpus, args.explainer, args.dtype, args.subject, device=args.device
    )
    features = parse_features(args, session.subject)
    explain_kwargs = {
        "max_rounds": args.max_rounds,
        "budget_usd": args.budget_usd,
        "max_llm_tokens": args.max_llm_tokens,
    }
    with explainers(args, cluster) as executor:  # the `sage` method's features on Ray workers
        result = run_compare(
            features,
            args.out or default_out(args),
            session,
            methods=methods,
            scorer_spec=args.scorer,
            groups=groups,
            explain_kwargs=explain_kwargs,
            neuronpedia_results=args.neuronpedia_results,
            executor=executor,
        )
    print(result["table"])
    print(
        f"report: {result['report']}"
        + (f"; plot: {result['plot']}" if result["plot"] else "; no plot (no values)")
        + f"; {result['seconds']} s"
    )
    return 0
