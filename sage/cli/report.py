"""`sage report`: a static HTML site from explanation results (index + one page per feature), and the
one-page report behind `sage explain --html`."""

from __future__ import annotations

from pathlib import Path

from sage.cli.common import add_corpus_arg, add_subject_args, subject_from
from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="write a static HTML report (sortable index, one page per feature) from results"
    )
    p.add_argument(
        "--results", type=Path, required=True, help="results JSONL of `sage batch` / `sage compare`"
    )
    p.add_argument("--eval", type=Path, default=None, help="score records JSONL of `sage eval --out`")
    p.add_argument(
        "--compare", type=Path, default=None, help="a `sage compare --out` folder (summary + plot)"
    )
    p.add_argument(
        "--steer", type=Path, default=None, help="`sage steer --json` output (one JSON or JSON lines)"
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the site (index.html, features/)")
    p.add_argument(
        "--method", default=None, help="which method's scores the index shows (default: the only one)"
    )
    p.add_argument("--top-k", type=int, default=None, help="top contexts per feature page (default 10)")
    p.add_argument(
        "--no-store",
        action="store_true",
        help="do not read the activation store or the vocabulary (pages show only the probes)",
    )
    add_subject_args(p)
    add_corpus_arg(p)
    p.set_defaults(func=run)


def _config(top_k: int | None):
    from sage.report.settings import REPORT, ReportConfig

    return REPORT if top_k is None else ReportConfig(top_contexts=top_k)


def check_references(explanations: dict[int, dict], subject) -> None:
    """Refuse results explained on another model or SAE than the store the pages would read."""
    info = subject.info()
    for f, rec in explanations.items():
        ref = rec.get("references")
        if ref and (ref.get("model"), ref.get("sae")) != (info["model"], info["sae"]):
            raise ConfigError(
                f"feature {f} was explained on model {ref.get('model')!r}, SAE {ref.get('sae')!r}, but the "
                f"activation store is for {info['model']!r}, {info['sae']!r}: pass the same --model/--sae, "
                "or --no-store"
            )


def open_store(subject, corpus: str):
    """The mined activation store of (subject, corpus); a ConfigError when it is not mined (a report
    never mines: that is `sage mine`'s job, and takes minutes)."""
    from sage.data.corpus import load_corpus
    from sage.store.activation_store import ActivationStore

    store = ActivationStore(subject, load_corpus(corpus))
    if not store.meta():
        raise ConfigError(
            f"the activation store for this model/SAE/corpus is not mined ({store.dir}): run `sage mine`, "
            "or pass --no-store"
        )
    return store


def extras_from(store, cfg):
    """(feature) -> (store data, vocabulary words) for the site writer."""
    from sage.report.store_data import store_feature, vocab_words

    return lambda f: (store_feature(store, f, cfg), vocab_words(store.subject, f, cfg))


def run(args) -> int:
    from tqdm import tqdm

    from sage.report.inputs import ReportInputs, read_compare, read_results, read_scores, read_steering
    from sage.report.site import write_site

    cfg = _config(args.top_k)
    inputs = ReportInputs(
        explanations=read_results(args.results),
        scores=read_scores(args.eval) if args.eval else {},
        compare=read_compare(args.compare) if args.compare else None,
        steering=read_steering(args.steer) if args.steer else {},
    )
    extras = None
    if not args.no_store:
        subject = subject_from(args)
        check_references(inputs.explanations, subject)
        extras = extras_from(open_store(subject, args.corpus), cfg)
    summary = write_site(
        inputs,
        args.out,
        extras,
        method=args.method or args.results.stem,
        cfg=cfg,
        progress=lambda it: tqdm(list(it), desc="pages", unit="feature"),
    )
    print(f"report: {summary['index']} ({summary['features']} features)")
    return 0


def write_html(expl: dict, path: Path, session) -> Path:
    """`sage explain --html FILE`: one standalone page for a fresh explanation, with its store data."""
    from sage.report.settings import REPORT
    from sage.report.site import write_feature_page

    extras = extras_from(session.store, REPORT)
    store, vocab = extras(int(expl["feature"]["index"]))
    return write_feature_page(expl, path, store, vocab)
