"""`sage info`: what SAGE would study (model, SAE, hook, corpus, store status)."""

from __future__ import annotations

from sage.cli.common import add_corpus_arg, add_subject_args, print_json, subject_from


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="show the model, SAE, hook point, corpus and activation-store status")
    add_subject_args(p)
    add_corpus_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.data.corpus import load_corpus
    from sage.store.activation_store import ActivationStore
    from sage.version import __version__

    subject = subject_from(args)
    info = subject.info()
    corpus = load_corpus(args.corpus)
    info["corpus"] = corpus.name
    info["store"] = ActivationStore(subject, corpus).status()
    info["sage_version"] = __version__
    if args.json:
        print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:>14}: {v}")
    return 0
