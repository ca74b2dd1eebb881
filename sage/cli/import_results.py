"""`sage import`: Neuronpedia explanation exports as a SAGE results JSONL."""

from __future__ import annotations

from pathlib import Path

from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import",
        help="read Neuronpedia explanation exports into a results JSONL (for eval / compare / select)",
        description="Reads Neuronpedia's export layout (a folder with explanations/batch-N.jsonl[.gz], "
        "features/ and source.jsonl, or one explanations batch file) into SAGE's results format: one "
        "explanation per feature (docs/neuronpedia.md).",
    )
    p.add_argument("--neuronpedia", type=Path, required=True, help="export folder or explanations file")
    p.add_argument("--out", type=Path, required=True, help="results JSONL to write")
    p.add_argument(
        "--explainer",
        default=None,
        help="keep the explanations of this explanationModelName (or typeName); default: per feature, "
        "the first explainer listed",
    )
    p.add_argument(
        "--d-sae", type=int, default=None, help="the SAE's width, when the export does not state it"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.neuronpedia.interop import import_neuronpedia, write_records

    if args.out.exists() and not args.overwrite:
        raise ConfigError(f"{args.out} exists: pass --overwrite or choose another --out")
    records = import_neuronpedia(args.neuronpedia, explainer=args.explainer, d_sae=args.d_sae)
    n = write_records(records, args.out)
    print(f"imported {n} explanation(s) into {args.out}")
    return 0
