"""`sage mine`: build (or resume, or extend) the activation store."""

from __future__ import annotations

from sage.cli.common import add_corpus_arg, add_subject_args, print_json, subject_from


def add_parser(sub) -> None:
    p = sub.add_parser("mine", help="mine top / quantile / negative contexts for every feature (resumable)")
    add_subject_args(p)
    add_corpus_arg(p)
    p.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="stop after this many tokens (default: whole corpus); a larger value later extends the store",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.data.corpus import load_corpus
    from sage.store.activation_store import ActivationStore

    store = ActivationStore(subject_from(args), load_corpus(args.corpus))
    store.mine(args.tokens)
    status = store.status()
    print_json(status) if args.json else print(status)
    return 0
