"""`sage vocab`: MI vocabulary words (or logit-lens tokens) of a feature, or statistics over all features."""

from __future__ import annotations

import argparse

from sage.cli.common import add_subject_args, print_json
from sage.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "vocab",
        help="words that explain a feature (mutual information over a fixed vocabulary)",
        description="Words of a fixed English vocabulary ranked by the mutual-information "
        "objective of Wu et al. (arXiv 2502.15576), or the logit-lens tokens, "
        "computed for all features once and cached.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--feature", type=int, help="feature index")
    what.add_argument(
        "--stats",
        action="store_true",
        help="diversity / lexical / dominate over all features, for both methods, by our definitions "
        "(--top words each) and by the MI paper's released code (top 50)",
    )
    p.add_argument(
        "--top", type=int, default=20, help="words per feature, also in our statistics (default 20, max 50)"
    )
    p.add_argument("--method", choices=["mi", "logitlens"], default="mi", help="ranking (default mi)")
    p.add_argument(
        "--variant",
        choices=["ours", "reference"],
        help="MI variant: ours, or the released code's choices (encoder rows, p(w|c) log p(c|w), "
        "alpha = beta = 1); default: the one the output-side benchmark chose (docs/methods.md)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_subject_args(p)
    p.set_defaults(func=run)


def load_tables(args):
    """Tables for the CLI's model + SAE: straight from the cache when possible, else via the subject."""
    from sage.vocab import tables as vocab

    settings = vocab.VOCAB.for_variant(args.variant or vocab.VOCAB.variant)
    if not 1 <= args.top <= settings.keep:
        raise ConfigError(f"--top must be between 1 and {settings.keep}")
    quick = vocab.quick_key(args.model, args.sae, args.dtype, settings)
    tables = vocab.cached_tables(quick, settings)
    if tables is None:
        from sage.cli.common import subject_from
        from sage.vocab.lookup import vocab_tables

        subject = subject_from(args)
        if args.feature is not None:
            subject.check_feature(args.feature)  # before computing every feature
        tables = vocab_tables(subject, settings)
        vocab.remember(quick, tables)
    return tables


def run(args: argparse.Namespace) -> int:
    tables = load_tables(args)
    meta = {
        "model": tables.meta.get("model"),
        "sae": tables.meta.get("sae"),
        "hook": tables.meta.get("hook"),
        "variant": tables.settings.variant,
    }
    if args.stats:
        stats = {
            variant: {m: s.to_dict() for m, s in by_method.items()}
            for variant, by_method in tables.stats(args.top).items()
        }
        if args.json:
            print_json(
                {**meta, "n_words": len(tables.words), **stats, "definitions": _definitions(tables.settings)}
            )
        else:
            _print_stats(meta, stats, tables.d_sae, _definitions(tables.settings))
        return 0
    ranked = tables.ranked(args.method, args.feature, args.top)
    if args.json:
        print_json(
            {
                **meta,
                "feature": args.feature,
                "method": args.method,
                "score": _score_text(args.method, meta["variant"]),
                "results": [{"text": t, "score": s} for t, s in ranked],
            }
        )
        return 0
    method = f"mi ({meta['variant']})" if args.method == "mi" else args.method
    print(f"feature {args.feature} · {method} · {meta['model']} + {meta['sae']} ({meta['hook']})")
    print(f"score: {_score_text(args.method, meta['variant'])}")
    width = max(len(repr(t)) for t, _ in ranked)
    for i, (text, score) in enumerate(ranked, 1):
        shown = text if args.method == "mi" else repr(text)
        print(f"{i:3d}. {shown:<{width}}  {score:+.5f}")
    return 0


_SCORE = {
    "mi": "p(w|c) * log(p(c|w) / p(c)), the word's share of the feature-word mutual information",
    "reference": "p(w|c) * log p(c|w) over encoder rows through the final norm (the released code's)",
    "logitlens": "unit decoder direction (after the final norm) . unembedding row",
}


def _score_text(method: str, variant: str) -> str:
    return _SCORE["reference" if method == "mi" and variant == "reference" else method]


def _definitions(s) -> dict:
    sup = (
        f"among the {s.superficial_rank} most frequent vocabulary words or shorter than "
        f"{s.superficial_chars} characters"
    )
    return {
        "ours": {
            "diversity": "distinct words / all listed words (list slots)",
            "lexical": f"share of listed words that are superficial ({sup})",
            "dominate": f"share of listed words that appear in the lists of more than {s.dominate_share:.0%} "
            "of the features",
        },
        "reference": {
            "source": "JacksonWuxs/SteeringLLMs_with_MIExplanations MI_explainer.py (__main__)",
            "diversity": "distinct non-superficial listed words / non-superficial words of the vocabulary "
            "the method draws on (MI: the word list; logit lens: the model's tokens)",
            "lexical": f"distinct superficial listed words / superficial words of that vocabulary ({sup})",
            "dominate": f"distinct listed words in more than {s.dominate_share:.0%} of the lists / distinct "
            "listed words",
            "total": "diversity - lexical",
        },
    }


def _print_stats(meta: dict, stats: dict, n_features: int, definitions: dict) -> None:
    head = f"{meta['model']} + {meta['sae']} ({meta['hook']})"
    print(f"{head}: {n_features} features, MI variant {meta['variant']}")
    for variant in ("ours", "reference"):
        top = next(iter(stats[variant].values()))["top"]
        print(f"\n{variant} definitions, top {top} per feature")
        print(f"{'method':<10} {'diversity':>9} {'lexical':>8} {'dominate':>9}")
        for method, s in stats[variant].items():
            print(f"{method:<10} {s['diversity']:9.4f} {s['lexical']:8.4f} {s['dominate']:9.4f}")
        for name, text in definitions[variant].items():
            print(f"  {name}: {text}")
