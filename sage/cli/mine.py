"""`sage mine`: build (or resume, or extend) the activation store."""

from __future__ import annotations

import sys

from sage.cli.common import (
    add_corpus_arg,
    add_ray_args,
    add_subject_args,
    cluster_from,
    print_json,
    subject_from,
)


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
    p.add_argument(
        "--compile",
        action="store_true",
        help="after the first batches, run the blocks before the hook through torch.compile "
        "(sage.model.compiled; on 2 CPU cores no faster, docs/performance.md)",
    )
    p.add_argument("--json", action="store_true")
    add_ray_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.data.corpus import load_corpus
    from sage.store.activation_store import ActivationStore

    if args.ray is not None and args.compile:
        print(
            "sage mine: --compile runs in one process; Ray workers mine eagerly (drop one of the two)",
            file=sys.stderr,
        )
        return 2
    cluster = cluster_from(args)
    if cluster is None:
        store = ActivationStore(subject_from(args), load_corpus(args.corpus))
        store.mine(args.tokens, compile=args.compile)
    else:
        from functools import partial

        from sage.distributed.mining import RayMiners, open_subject

        # the driver only names the store and merges shards: its copy of the model stays off the GPUs
        store = ActivationStore(subject_from(args, device="cpu"), load_corpus(args.corpus))
        worker_subject = partial(open_subject, args.model, args.sae, args.dtype, args.device)
        with RayMiners(worker_subject, partial(load_corpus, args.corpus), cluster) as miners:
            miners.mine(store, args.tokens)
    status = store.status()
    print_json(status) if args.json else print(status)
    return 0
