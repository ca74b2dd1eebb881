"""`sage` command line. Each subcommand lives in `sage/cli/<name>.py` and exposes
`add_parser(subparsers)` (which sets `func`) ; this file only wires them together.

Exit codes: 0 success; 1 `sage batch` finished with some features failed; 2 a problem the user can
fix (`SageError`: bad input, missing set-up), printed as one line; 3 the explainer failed
(`ExplainerError`: a server that cannot be reached or rejects the request, output that never
validated), also one line; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from sage.cli.common import EXIT_EXPLAINER_FAILED
from sage.errors import ExplainerError, SageError

COMMANDS = [
    "setup",
    "info",
    "top",
    "activations",
    "mine",
    "train_sae",
    "explain",
    "batch",
    "vocab",
    "steer",
    "select",
    "eval",
    "compare",
    "export",
    "import",
    "report",
]
#: subcommands whose module is not named after them (`import` is a Python keyword)
MODULES = {"import": "import_results"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported (fast start-up:
    some subcommands import torch and transformers at module level)."""
    parser = argparse.ArgumentParser(prog="sage", description="Explain SAE features by experiment.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in [only] if only else COMMANDS:
        importlib.import_module(f"sage.cli.{MODULES.get(name, name)}").add_parser(sub)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    words = [a for a in argv if not a.startswith("-")]
    name = words[0].replace("-", "_") if words else None
    return name if name in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_requested_command(argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(args.func(args) or 0)
    except ExplainerError as exc:
        print(f"sage {args.command}: explanation failed: {exc}", file=sys.stderr)
        return EXIT_EXPLAINER_FAILED
    except SageError as exc:
        print(f"sage {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"sage {args.command}: interrupted; progress so far is saved, re-run to resume", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
