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


def subject_from(args):
    """The local model + SAE of --model / --sae (commands that need the weights: not --subject)."""
    from sage.model.subject import load_subject, quiet_transformers

    if getattr(args, "subject", None):
        raise ConfigError(
            f"--subject {args.subject} has no local weights; this command needs --model / --sae "
            "(a Neuronpedia subject works with explain, batch, compare, eval, top and activations)"
        )
    if not getattr(args, "verbose", False):
        quiet_transformers()

    return load_subject(args.model, args.sae, dtype=args.dtype, device=args.device)


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
