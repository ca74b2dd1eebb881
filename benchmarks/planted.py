"""Planted concepts: does the explainer name a concept that a latent was built to detect?

An SAE (sae-lens `StandardSAE`, ReLU) is built whose 8 latents are logistic-regression probes for
known concepts (colour, weekday, month, number word, animal, kinship, body part, emotion), trained
on the embedded model's residual stream at the default SAE's hook. Each probe is trained on half of
its concept's words (in template sentences and in corpus text) and checked on the other half, so a
latent responds to the category, not to a word list. Its activation store is mined on the first
`--tokens` tokens of the default corpus; each latent is then explained by the loop (default: the
`offline` explainer), and a latent counts as *named* when its label or description contains one of
the concept's accepted names, fixed below before any run (word-boundary, case-insensitive).

    python benchmarks/planted.py [--tokens 200000] [--explainer offline] [--max-rounds 3] [--json]

Prints one line per latent and the count named; `--json` prints one object.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import torch


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: concept -> (its words, as written in text: the probe's positives; accepted names)
CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "colour": (
        _words("red blue green yellow black white brown pink purple orange grey gold"),
        ("color", "colour"),
    ),
    "weekday": (
        _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
        ("weekday", "day of the week"),
    ),
    "month": (
        _words("January February March April June July August September October November"),
        ("month",),
    ),
    "number": (
        _words("one two three four five six seven eight nine ten twenty hundred"),
        ("number", "digit", "integer", "numeral"),
    ),
    "animal": (
        _words("dog cat horse cow pig sheep bird lion tiger bear wolf mouse fox"),
        ("animal", "mammal", "vertebrate", "creature"),
    ),
    "kinship": (
        _words("mother father sister brother son daughter wife husband uncle aunt cousin"),
        ("relative", "kin", "kinship", "family"),
    ),
    "body part": (
        _words("hand arm leg head eye foot finger face nose mouth ear knee"),
        ("body part",),
    ),
    "emotion": (
        _words("joy anger fear sadness love hate happiness grief pride shame anxiety"),
        ("emotion", "feeling"),
    ),
}
#: a latent fires on at most this share of the corpus tokens that are not its concept's words
#: (its bias is raised until it does), so it is sparse, like an SAE latent
FALSE_POSITIVE_RATE = 0.002
TEMPLATES = (
    "I keep thinking about{w} these days.",
    "The word{w} appeared twice in the letter.",
    "She mentioned{w} before she left the room.",
    "We talked about{w} for a while.",
    "There was something about{w} that stayed with him.",
    "He wrote{w} at the top of the page.",
)


def named(concept: str, text: str) -> bool:
    """Whether `text` contains one of the concept's accepted names (word boundary, any case)."""
    return any(re.search(rf"\b{re.escape(n)}\b", text, flags=re.I) for n in CONCEPTS[concept][1])


def _single_token(tok, word: str) -> int | None:
    ids = tok(" " + word, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def split_words(tok) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """The concepts' single-token words: every other one to train on ({token id: concept index}), the
    rest held out ([(concept index, word)])."""
    word_ids: dict[int, int] = {}
    held: list[tuple[int, str]] = []
    for c, (words, _) in enumerate(CONCEPTS.values()):
        for j, w in enumerate(words):
            tid = _single_token(tok, w)
            if tid is None:
                continue
            if j % 2 == 0:
                word_ids[tid] = c
            else:
                held.append((c, w))
    return word_ids, held


def training_data(engine, corpus_contexts: list[list[int]], seed: int = 0):
    """Hidden states [N, d] and multi-labels [N, C] (float) for the probes.

    Positives: the concept's training words (every other word of its list) in template sentences and
    wherever they occur in the corpus contexts; negatives: every other token."""
    tok = engine.subject.tokenizer
    names = list(CONCEPTS)
    word_ids, _ = split_words(tok)
    train_words = [(c, tok.decode([t]).strip()) for t, c in word_ids.items()]
    rng = random.Random(seed)
    texts = [t.format(w=" " + w) for c, w in train_words for t in TEMPLATES]
    rng.shuffle(texts)
    seqs = engine.tokenize(texts) + [list(c) for c in corpus_contexts]
    xs, ys = [], []
    with torch.no_grad():
        for start in range(0, len(seqs), 32):
            batch = seqs[start : start + 32]
            ids, mask = engine.pad(batch)
            h = engine.hidden(ids, mask).float()
            sinks = engine.sink_mask(h)
            for row, s in enumerate(batch):
                for pos in range(1, len(s)):
                    if sinks[row, pos]:
                        continue
                    y = torch.zeros(len(names))
                    if s[pos] in word_ids:
                        y[word_ids[s[pos]]] = 1.0
                    xs.append(h[row, pos])
                    ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def fit_probes(x: torch.Tensor, y: torch.Tensor, steps: int = 300, seed: int = 0):
    """One logistic regression per concept (class-balanced BCE, L2): weights [d, C], bias [C]; then each
    bias is lowered until at most `FALSE_POSITIVE_RATE` of the other tokens get a positive logit."""
    torch.manual_seed(seed)
    d, c = x.shape[1], y.shape[1]
    scale = x.norm(dim=1).mean()
    xs = x / scale
    w = torch.zeros(d, c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    pos = y.sum(0).clamp(min=1)
    opt = torch.optim.Adam([w, b], lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            xs @ w + b, y, pos_weight=(len(y) - pos) / pos
        )
        (loss + 1e-4 * w.pow(2).sum()).backward()
        opt.step()
    with torch.no_grad():
        logits = xs @ w + b
        for j in range(c):
            neg = logits[y[:, j] == 0, j]
            b[j] -= torch.quantile(neg, 1 - FALSE_POSITIVE_RATE).clamp(min=0)
        logits = xs @ w + b
        recall = ((logits > 0) & (y > 0)).sum(0) / pos
    print(
        "probe recall on its training words: " + ", ".join(f"{r:.2f}" for r in recall.tolist()),
        file=sys.stderr,
    )
    return (w / scale).detach(), b.detach()


def build_sae(out: Path, w: torch.Tensor, b: torch.Tensor, hook: str, hf_hook: str, model_name: str) -> None:
    """Save the probes as an sae-lens StandardSAE: latent i = ReLU(x . w_i + b_i), decoder = w_i / |w_i|."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    meta = SAEMetadata(hook_name=hook, hf_hook_name=hf_hook, model_name=model_name)
    cfg = StandardSAEConfig(d_in=w.shape[0], d_sae=w.shape[1], apply_b_dec_to_input=False, metadata=meta)
    sae = StandardSAE(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(w)
        sae.b_enc.copy_(b)
        sae.W_dec.copy_((w / w.norm(dim=0, keepdim=True)).T)
        sae.b_dec.zero_()
    out.mkdir(parents=True, exist_ok=True)
    sae.save_model(out)
    (out / "concepts.json").write_text(json.dumps(list(CONCEPTS)))


def held_out_check(subject, held: list[tuple[int, str]]) -> dict[str, float]:
    """Per concept: share of its held-out words (never trained on) on which its latent fires in a template."""
    from sage.model.engine import ActivationEngine

    eng = ActivationEngine(subject)
    names = list(CONCEPTS)
    texts = [TEMPLATES[0].format(w=" " + w) for _, w in held]
    runs = eng.run(texts, list(range(len(names))))
    hits: dict[str, list[bool]] = {n: [] for n in names}
    for (c, _), ta in zip(held, runs):
        hits[names[c]].append(bool(ta.column(c).max() > 0))
    return {n: round(sum(v) / len(v), 3) if v else float("nan") for n, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=200_000, help="corpus tokens mined for the planted SAE")
    ap.add_argument("--explainer", default="offline")
    ap.add_argument("--max-rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="where the planted SAE is kept")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from sage import config
    from sage.data.corpus import load_corpus
    from sage.llm import make_backend
    from sage.model.engine import ActivationEngine
    from sage.model.subject import load_subject
    from sage.runs import Session, explain
    from sage.store.activation_store import ActivationStore

    out = args.out or config.sage_home() / "benchmarks" / "planted_sae"
    base = load_subject("default", "default")
    meta = base.sae.cfg.metadata
    if args.rebuild or not (out / "cfg.json").exists():
        corpus = load_corpus("default")
        contexts = []
        for ids in corpus.contexts(base.tokenizer, base.sink_id, 64):
            contexts.append(ids)
            if len(contexts) == 400:
                break
        start = time.perf_counter()
        x, y = training_data(ActivationEngine(base), contexts)
        w, b = fit_probes(x, y)
        build_sae(out, w, b, meta.hook_name, meta.hf_hook_name, meta.model_name)
        print(
            f"planted SAE: {len(y)} training tokens, {time.perf_counter() - start:.0f} s -> {out}",
            file=sys.stderr,
        )
    subject = load_subject("default", str(out))
    generalises = held_out_check(subject, split_words(subject.tokenizer)[1])
    corpus = load_corpus("default")
    store = ActivationStore(subject, corpus)
    store.mine(args.tokens)
    session = Session(subject, store, make_backend(args.explainer), corpus.name)
    rows = []
    for i, concept in enumerate(CONCEPTS):
        start = time.perf_counter()
        e = explain(i, session=session, max_rounds=args.max_rounds).to_dict()
        text = " ".join(e["labels"]) + " " + e["description"]
        rows.append(
            {
                "latent": i,
                "concept": concept,
                "held_out_words_firing": generalises[concept],
                "named": named(concept, text),
                "labels": e["labels"],
                "stop_reason": e["stop_reason"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        if not args.json:
            r = rows[-1]
            mark = "NAMED " if r["named"] else "missed"
            print(
                f"{mark} {i} {concept:10s} held-out words firing "
                f"{r['held_out_words_firing']:.2f}  {r['labels']}"
            )
    n = sum(r["named"] for r in rows)
    summary = {
        "named": n,
        "latents": len(rows),
        "explainer": args.explainer,
        "tokens": args.tokens,
        "rows": rows,
    }
    print(
        json.dumps(summary) if args.json else f"named {n}/{len(rows)} concepts ({args.explainer} explainer)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
