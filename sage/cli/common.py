"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import sys

from sage import config


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


def add_corpus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        default=config.DEFAULT,
        help="default, hf:DATASET[:SPLIT], or comma-separated .txt/.jsonl files or folders",
    )


def subject_from(args):
    from sage.model.subject import load_subject, quiet_transformers

    if not getattr(args, "verbose", False):
        quiet_transformers()

    return load_subject(args.model, args.sae, dtype=args.dtype)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
