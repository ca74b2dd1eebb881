"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import sys

from sage import config
from sage.errors import ConfigError

#: the exit code of a command whose explainer failed (`sage explain`, documented in the README)
EXIT_EXPLAINER_FAILED = 3


def add_subject_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=config.DEFAULT,
        help="HF model id or folder (default: embedded SmolLM2-135M-Instruct)",
    )
    p.add_argument(
        "--sae",
        default=config.DEFAULT,
        help="SAE: default, a folder in sae-lens format, RELEASE:SAE_ID, or hf:REPO[/SUBDIR]",
    )
    p.add_argument("--dtype", default=None, help="model dtype: bfloat16 (default) or float32")
    add_device_arg(p)
    p.add_argument(
        "--subject",
        default=None,
        help="neuronpedia:MODEL/SOURCE: a public SAE through Neuronpedia's API instead of --model/--sae "
        "(no local model; $SAGE_NEURONPEDIA_URL, $NEURONPEDIA_API_KEY; explain, batch, compare, eval, top, "
        "activations)",
    )


def add_device_arg(p: argparse.ArgumentParser) -> None:
    from sage.model.device import AUTO

    p.add_argument(
        "--device",
        default=AUTO,
        help="where the model and SAE run: auto (cuda when present), cpu, cuda, cuda:N, mps",
    )


def add_corpus_arg(p: argparse.ArgumentParser, help_default: str = "the default corpus") -> None:
    p.add_argument(
        "--corpus",
        default=config.DEFAULT,
        help=f"default ({help_default}), hf:DATASET[:SPLIT], or comma-separated .txt/.jsonl files or folders",
    )


def add_ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray (an optional extra: pip install -e '.[ray]'; docs/scaling.md)")
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray workers: alone, a Ray started on this machine; `auto`, the cluster this machine "
        "joined with `ray start`; ray://HOST:10001, a remote cluster",
    )
    g.add_argument(
        "--workers", type=int, default=None, help="Ray workers (default: one per GPU, else one per CPU)"
    )
    g.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each Ray worker reserves")
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        help="GPUs each Ray worker reserves (default: 1 when there are GPUs)",
    )


def cluster_from(args):
    """The `sage.distributed.cluster.ClusterConfig` of --ray / --workers / ..., or None without --ray
    (a ConfigError saying how to install Ray when it is missing)."""
    from sage.distributed.cluster import ClusterConfig, require_ray

    if args.ray is None:
        if args.workers is not None or args.gpus_per_worker is not None:
            raise ConfigError("--workers and --gpus-per-worker need --ray")
        return None
    require_ray()
    return ClusterConfig(
        address=None if args.ray == "local" else args.ray,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )


def session_opener(args):
    """What each Ray worker runs to open its session: `Session.open` with these arguments, never mining
    (the driver's session mined the store first)."""
    from functools import partial

    from sage.runs import Session

    opts = (args.model, args.sae, args.corpus, args.explainer, args.dtype, args.subject)
    return partial(Session.open, *opts, device=args.device, mine=False)


def subject_from(args, device: str | None = None):
    """The local model + SAE of --model / --sae (commands that need the weights: not --subject)."""
    from sage.model.subject import load_subject, quiet_transformers

    if getattr(args, "subject", None):
        raise ConfigError(
            f"--subject {args.subject} has no local weights; this command needs --model / --sae "
            "(a Neuronpedia subject works with explain, batch, compare, eval, top and activations)"
        )
    if not getattr(args, "verbose", False):
        quiet_transformers()

    return load_subject(args.model, args.sae, dtype=args.dtype, device=device or args.device)


def source_from(args):
    """The activation source of the arguments (`sage.store.source.ActivationSource`): a Neuronpedia
    SAE for --subject, else the local subject's activation store (mined on first use)."""
    if getattr(args, "subject", None):
        from sage.neuronpedia.source import open_source

        return open_source(args.subject)
    from sage.store.activation_store import ActivationStore

    return ActivationStore.load_or_mine(subject_from(args), args.corpus)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
