"""Print the "Ten example features" table of docs/default-sae.md.

Usage: python scripts/model_card_examples.py [--sae default] [--n 10] [--seed 0]

Draws live features at random among those firing on 0.05-2% of default-corpus tokens (rarer ones are
mostly noise, commoner ones mostly position or punctuation features), then shows the top tokens of their
five strongest contexts, their top MI-vocabulary words and the strongest context. Mines the default store
and builds the vocabulary tables first if they are missing (minutes on a CPU).
"""

from __future__ import annotations

import argparse
import random

from sage import config
from sage.model.subject import load_subject
from sage.store.activation_store import ActivationStore
from sage.vocab.lookup import mi_words

FREQ_RANGE = (0.0005, 0.02)


def _cell(text: str, width: int = 100) -> str:
    return text.replace("\n", "\\n").replace("|", "\\|")[:width]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sae", default=config.DEFAULT)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    subject = load_subject(sae=args.sae)
    store = ActivationStore.load_or_mine(subject)
    stats = {f: store.feature_stats(f) for f in range(subject.d_sae)}
    pool = [f for f, s in stats.items() if FREQ_RANGE[0] <= s.frequency <= FREQ_RANGE[1]]
    chosen = sorted(random.Random(args.seed).sample(pool, min(args.n, len(pool))))
    print(
        f"{len(pool)} of {subject.d_sae} features fire on {FREQ_RANGE[0]:.2%}-{FREQ_RANGE[1]:.0%} of tokens; "
        f"{len(chosen)} drawn with seed {args.seed}.\n"
    )
    print("| feature | frequency | max act | top tokens | MI words | strongest context |")
    print("|---|---|---|---|---|---|")
    for f in chosen:
        top = store.top(f, 5)
        tokens = ", ".join(repr(c.tokens[c.max_pos]) for c in top)
        words = ", ".join(w for w, _ in mi_words(subject, f, top=5))
        ctx = top[0].marked_text()
        mark = ctx.index("[[")
        snippet = ("…" if mark > 60 else "") + ctx[max(0, mark - 60) : mark + 40] + "…"
        s = stats[f]
        print(
            f"| {f} | {s.frequency:.3%} | {s.max_activation:.2f} | {_cell(tokens)} | {_cell(words)} | "
            f"{_cell(snippet, 120)} |"
        )


if __name__ == "__main__":
    main()
