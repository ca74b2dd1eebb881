"""`sage export`: a results file in Neuronpedia's export layout, or as SAGE's own JSONL."""

from __future__ import annotations

from pathlib import Path

from sage.cli.common import add_corpus_arg, add_subject_args, print_json
from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export explanations: Neuronpedia's layout (to upload or compare) or SAGE's JSONL",
        description="--format neuronpedia writes <out>/<modelId>/<sourceId>/{source.jsonl, features/, "
        "explanations/, activations/} as Neuronpedia's dump does; --format jsonl writes "
        "<out>/explanations.jsonl, one schema-checked explanation per feature (docs/neuronpedia.md).",
    )
    p.add_argument("--results", type=Path, required=True, help="a `sage batch` / `sage import` results JSONL")
    p.add_argument("--format", choices=("neuronpedia", "jsonl"), default="neuronpedia")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--contexts",
        type=int,
        default=20,
        help="neuronpedia: top contexts per feature written as Activation rows, with per-token "
        "activations from the subject's store (--model/--sae/--corpus or --subject); 0 = none",
    )
    p.add_argument(
        "--model-id", default=None, help="neuronpedia: modelId to write (default: from the results)"
    )
    p.add_argument(
        "--source-id", default=None, help="neuronpedia: source id to write (default: from the results)"
    )
    add_subject_args(p)
    add_corpus_arg(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.evaluation.run import latest_explanations

    if not args.results.exists():
        raise ConfigError(f"--results {args.results} does not exist")
    if args.contexts < 0:
        raise ConfigError("--contexts must be 0 or more")
    records = [r for _, r in sorted(latest_explanations(args.results).items())]
    if args.format == "jsonl":
        summary = _export_jsonl(records, args.out)
    else:
        from sage.neuronpedia.interop import export_neuronpedia

        source = _contexts_source(args, records) if args.contexts else None
        summary = export_neuronpedia(
            records,
            args.out,
            (lambda f: source.top(f, args.contexts)) if source else None,
            model_id=args.model_id,
            source_id=args.source_id,
        )
    if args.json:
        print_json(summary)
    else:
        print(", ".join(f"{k} {v}" for k, v in summary.items() if k != "files"))
    return 0


def _export_jsonl(records: list[dict], out: Path) -> dict:
    from sage.neuronpedia.interop import write_records
    from sage.runs import validate_explanation

    good = [r for r in records if "error" not in r]
    for r in good:
        try:
            validate_explanation(r)
        except ValueError as exc:
            raise ConfigError(f"feature {r['feature']['index']}: {exc}") from exc
    path = out / "explanations.jsonl"
    n = write_records(good, path)
    return {"file": str(path), "explanations": n, "failed_skipped": len(records) - len(good)}


def _contexts_source(args, records: list[dict]):
    """The activation source the results were made with (checked), for their top contexts."""
    from sage.evaluation.run import check_subject

    if args.subject:
        from sage.neuronpedia.source import open_source

        source = open_source(args.subject)
    else:
        from sage.cli.common import subject_from
        from sage.data.corpus import load_corpus
        from sage.store.activation_store import ActivationStore

        source = ActivationStore(subject_from(args), load_corpus(args.corpus))
        if not source.meta():
            raise ConfigError(
                f"the activation store of this subject and corpus is not mined ({source.dir}): "
                "run `sage mine`, or pass --contexts 0"
            )
    for r in records:
        if "error" not in r:
            source.subject.check_feature(int(r["feature"]["index"]))
            source.top(int(r["feature"]["index"]), 1)  # a Neuronpedia subject learns its width here
            check_subject(r, source.subject)
    return source
