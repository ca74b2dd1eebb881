"""Feature selection for steering: Delta Token Confidence over all features, or by explanation.

Delta Token Confidence (Wang et al., arXiv 2510.03659): on a neutral prefix ("From my
experience,"), amplify one feature at the hook layer and compare the next-token
distribution with the unamplified one:

    C_k(p) = -(1/k) * sum of the log-probs of the top-k next tokens      (k = 20)
    dTC(f) = C_k(p_int(f)) - C_k(p_base)                                (alpha = 10)

The intervention follows the paper's predecessor, Arad et al. (2025, "SAEs are good for
steering if you select the right features"), whose output score uses the same prefix and
amplification factor: at the prefix's last position only, feature f's code is raised by
alpha * (the largest code of any feature at that position), decoded, and the SAE's
reconstruction error is added back. Raising by the position's top code rather than
multiplying f's own code gives every feature, including the many that are zero on this
prefix, an edit of the same size in activation units; multiplying would leave inactive
features untouched and make their dTC identically zero. For an affine decoder the edit is
x_last += alpha * max_j a_j * W_dec[f], so a feature with a zero decoder row has dTC 0.

All features are ranked with batched forwards. Only the last prefix position is edited, so
the positions before it are computed once and their KV cache is shared; each forward then
runs the last token for `batch_size` features plus one unedited row, and dTC compares rows
of the same batch.

Sources and sign. No code released with arXiv 2510.03659 could be found (docs/methods.md);
C_k is the token confidence of DeepConf (Fu et al., arXiv 2508.15260), as its released code
computes it (facebookresearch/deepconf helper.py `compute_confidence`: minus the mean of the top
log-probs, over vLLM's 20 returned log-probs), so k = 20. Under it a peaked distribution has a
high C_k, so a positive dTC means the amplified feature made the model surer of its next token
(usually a token the feature writes): the paper's "high dTC" features, ranked first by
`--direction up`; `--direction down` ranks the features that flatten it. (With k = 1, C_1 is the
surprisal of the top token and the sign flips; tests/steering/test_math.py pins both.)

Selection by explanation matches a concept query against the labels and descriptions of
stored explanations (`sage batch` results JSONL) and/or against each feature's
mutual-information vocabulary words (`sage.vocab.tables`).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sage.errors import ConfigError, require_ints, require_range
from sage.intervention import math as sm
from sage.intervention.edits import residual_hook
from sage.model.engine import ActivationEngine
from sage.model.subject import Subject
from sage.vocab import lookup

DIRECTIONS = ("up", "down")


@dataclass(frozen=True)
class DtcConfig:
    """Defaults of Delta Token Confidence (the paper's prefix, alpha and k; see the module docstring)."""

    #: the neutral prefix whose next-token distribution is read
    prefix: str = "From my experience,"
    #: amplification, in multiples of the largest code at the prefix's last position
    alpha: float = 10.0
    #: next tokens whose log-probs make the confidence C_k (DeepConf's 20; see the module docstring)
    k: int = 20
    #: features amplified per forward pass
    batch_size: int = 256

    def __post_init__(self) -> None:
        require_ints(self, "k", "batch_size")
        require_range(self, "alpha", 0, open_low=True)


DTC = DtcConfig()


@dataclass(frozen=True)
class DtcScores:
    """dTC of every scored feature.

    features: [N] feature indices; dtc, c_int: [N] float32; top_token: [N] the most likely
    next token under each intervention; c_base / base_top_token: the unedited prefix;
    amplification: alpha * max code at the last prefix position (activation units).
    """

    prefix: str
    alpha: float
    k: int
    amplification: float
    c_base: float
    base_top_token: int
    features: torch.Tensor
    dtc: torch.Tensor
    c_int: torch.Tensor
    top_token: torch.Tensor
    seconds: float

    def ranked(self, top: int, direction: str = "up") -> list[int]:
        """Row indices of the `top` features with the largest (up) or smallest (down) dTC."""
        if direction not in DIRECTIONS:
            raise ConfigError(f"--direction must be up or down, not {direction!r}")
        order = torch.argsort(self.dtc, descending=direction == "up", stable=True)
        return order[:top].tolist()

    def to_dict(self, top: int, direction: str, tokenizer) -> dict:
        tok = lambda i: tokenizer.decode([int(i)])  # noqa: E731
        rows = [
            {
                "rank": r + 1,
                "feature": int(self.features[i]),
                "dtc": round(float(self.dtc[i]), 5),
                "c_int": round(float(self.c_int[i]), 5),
                "top_token": tok(self.top_token[i]),
            }
            for r, i in enumerate(self.ranked(top, direction))
        ]
        return {
            "criterion": "dtc",
            "direction": direction,
            "prefix": self.prefix,
            "alpha": self.alpha,
            "k": self.k,
            "amplification": round(self.amplification, 5),
            "c_base": round(self.c_base, 5),
            "base_top_token": tok(self.base_top_token),
            "n_features": int(self.features.numel()),
            "seconds": round(self.seconds, 2),
            "features": rows,
        }


def _last_position_delta(delta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Hook body adding delta [B, d] (float32) to the last position of h [B, T, d]."""

    def fn(h: torch.Tensor) -> torch.Tensor:
        out = h.clone()
        out[:, -1] = (h[:, -1].float() + delta.to(h.device)).to(h.dtype)
        return out

    return fn


@torch.no_grad()
def dtc_scores(
    subject: Subject,
    features: Sequence[int] | None = None,
    *,
    prefix: str = DTC.prefix,
    alpha: float = DTC.alpha,
    k: int = DTC.k,
    batch_size: int = DTC.batch_size,
    progress: bool = True,
) -> DtcScores:
    """Delta Token Confidence of `features` (all features of the SAE when None), batched.

    Cost: one forward of the prefix, then ceil(N / batch_size) single-position forwards of
    batch_size + 1 rows over the shared prefix KV cache.
    """

    start = time.perf_counter()
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    feats = (
        list(range(subject.d_sae)) if features is None else [subject.check_feature(int(f)) for f in features]
    )
    engine = ActivationEngine(subject)
    ids = engine.tokenize([prefix])[0]
    if len(ids) < 2:
        raise ConfigError("the dTC prefix is empty")
    sae = subject.sae
    x_last = engine.hidden(torch.tensor([ids]))[0, -1].float()  # [d]
    codes = sae.encode(x_last[None])[0]  # [F]
    top_code = float(codes.max())
    if not top_code > 0:
        raise ConfigError(
            f"no SAE feature fires on the last token of {prefix!r}; the amplification "
            "alpha * (largest code there) would be zero. Choose another --prefix"
        )
    amp = alpha * top_code
    device = next(subject.model.parameters()).device
    # Only the last position is edited, so the positions before it are the same in every row:
    # run them once and reuse their KV cache; each batch then runs one position per row.
    prefix_cache = subject.model(
        input_ids=torch.tensor([ids[:-1]], device=device), use_cache=True
    ).past_key_values
    dtc, c_int, top_tok = [], [], []
    c_base = base_top = None
    bar = tqdm(total=len(feats), desc="dTC", unit="feature", disable=not progress)
    for b in range(0, len(feats), batch_size):
        chunk = feats[b : b + batch_size]
        n = len(chunk)
        new_codes = codes.expand(n + 1, -1).clone()  # row 0 stays unedited
        new_codes[torch.arange(1, n + 1), chunk] += amp
        decoded = sae.decode(new_codes)  # one call: rows round identically where codes agree
        delta = decoded - decoded[0]
        cache = copy.deepcopy(prefix_cache)  # a forward appends to the cache it is given
        cache.batch_repeat_interleave(n + 1)
        last = torch.full((n + 1, 1), ids[-1], dtype=torch.long, device=device)
        with residual_hook(subject, _last_position_delta(delta)):
            logits = subject.model(input_ids=last, past_key_values=cache, use_cache=True).logits[:, -1]
        conf = sm.token_confidence(logits, k).cpu()
        dtc.append(conf[1:] - conf[0])
        c_int.append(conf[1:])
        top_tok.append(logits[1:].argmax(dim=-1).cpu())
        if c_base is None:
            c_base, base_top = float(conf[0]), int(logits[0].argmax())
        bar.update(n)
    bar.close()
    return DtcScores(
        prefix,
        alpha,
        k,
        amp,
        c_base,
        base_top,
        torch.tensor(feats),
        torch.cat(dtc),
        torch.cat(c_int),
        torch.cat(top_tok),
        time.perf_counter() - start,
    )


# -- selection by explanation --------------------------------------------------------------------
@dataclass(frozen=True)
class ConceptMatch:
    """A feature whose explanation (or MI words) matches a concept query. score in [0, 1]."""

    feature: int
    score: float
    labels: tuple[str, ...]
    description: str
    #: "output" (the tokens its output section says it promotes), "explanation" (labels, description,
    #: predicate tokens: what it fires on) or "mi-vocabulary"
    source: str

    def to_dict(self) -> dict:
        return {
            "feature": self.feature,
            "score": round(self.score, 4),
            "labels": list(self.labels),
            "description": self.description,
            "source": self.source,
        }


_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "with",
        "by",
        "from",
        "as",
        "is",
        "are",
        "be",
        "this",
        "that",
        "its",
        "it",
        "feature",
        "features",
        "token",
        "tokens",
        "about",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")


def concept_words(text: str) -> set[str]:
    """Lower-cased content words of `text`, plurals folded ("cats" -> "cat")."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.add(w)
    return out


def concept_score(query: str, labels: Sequence[str], description: str = "") -> float:
    """How well a feature's labels / description cover a concept query, in [0, 1].

    1.0 when the whole query appears in a label; otherwise the share of query words found,
    where a word found in a label counts 1 and one found only in the description 0.5.
    """
    q = concept_words(query)
    if not q:
        raise ConfigError(f"the concept query {query!r} has no content words")
    low = query.strip().lower()
    if any(low and low in lab.lower() for lab in labels):
        return 1.0
    lab_words = set().union(*(concept_words(lab) for lab in labels)) if labels else set()
    desc_words = concept_words(description)
    return sum(1.0 if w in lab_words else 0.5 if w in desc_words else 0.0 for w in q) / len(q)


def load_explanations(path: str | Path) -> list[dict]:
    """Explanation dicts from a `sage batch` results JSONL (failure lines are skipped)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"results file {p} does not exist")
    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{n} is not JSON: {exc}") from exc
        if "error" in obj and "labels" not in obj:
            continue
        if not isinstance(obj.get("feature"), dict) or "index" not in obj["feature"] or "labels" not in obj:
            raise ConfigError(f"{p}:{n} is not an explanation (needs feature.index and labels)")
        out.append(obj)
    return out


SIDES = ("any", "input", "output")


def promoted_words(expl: Mapping) -> tuple[str, ...]:
    """The tokens an explanation's output section says amplifying the feature raises (stripped), best
    first."""
    out = (expl.get("output") or {}).get("promoted", [])
    return tuple(dict.fromkeys(t["token_text"].strip() for t in out if t["token_text"].strip()))


def _predicate_tokens(pred) -> list[str]:
    if not isinstance(pred, Mapping) or pred.get("type") == "not":
        return []
    own = [str(t) for t in pred.get("tokens", [])] if pred.get("type") == "token_set" else []
    return own + [t for part in (*pred.get("all", []), *pred.get("any", [])) for t in _predicate_tokens(part)]


def match_explanations(
    query: str, explanations: Iterable[Mapping], top: int = 10, side: str = "any"
) -> list[ConceptMatch]:
    """The `top` explanations that best match `query` (score > 0), best first.

    side "input": what the feature fires on (labels, description, the predicate's token set); "output":
    what it promotes (its output section's promoted tokens, as labels); "any": the better of the two.
    When a feature appears more than once (re-runs), its best-scoring explanation counts.
    """
    if side not in SIDES:
        raise ConfigError(f"unknown side {side!r}; choose one of {', '.join(SIDES)}")
    best: dict[int, ConceptMatch] = {}
    for e in explanations:
        labels = tuple(str(x) for x in e.get("labels", []))
        desc = str(e.get("description", ""))
        f = int(e["feature"]["index"])
        found = []
        if side in ("any", "input"):
            fires = (*labels, " ".join(_predicate_tokens(e.get("predicate"))))
            found.append(ConceptMatch(f, concept_score(query, fires, desc), labels, desc, "explanation"))
        promoted = promoted_words(e)
        if side in ("any", "output") and promoted:
            found.append(ConceptMatch(f, concept_score(query, promoted), promoted[:10], desc, "output"))
        for m in found:
            if m.score > 0 and (f not in best or m.score > best[f].score):
                best[f] = m
    return sorted(best.values(), key=lambda m: (-m.score, m.feature))[:top]


def match_words(
    query: str, words_by_feature: Mapping[int, Sequence[str]], top: int = 10, source: str = "mi-vocabulary"
) -> list[ConceptMatch]:
    """The `top` features whose word lists best cover `query` (each word list acts as labels)."""
    out = []
    for f, words in words_by_feature.items():
        words = tuple(words)
        s = concept_score(query, words)
        if s > 0:
            out.append(ConceptMatch(int(f), s, words[:10], "", source))
    return sorted(out, key=lambda m: (-m.score, m.feature))[:top]


def mi_word_lists(subject: Subject, n_words: int = 20) -> dict[int, list[str]]:
    """Each feature's top `n_words` MI vocabulary words (`sage.vocab.tables`, cached per model + SAE)."""

    tables = lookup.vocab_tables(subject)
    return {f: [w for w, _ in tables.mi(f, n_words)] for f in range(tables.d_sae)}


def select_by_concept(
    query: str,
    *,
    results: str | Path | None = None,
    subject: Subject | None = None,
    use_vocab: bool = False,
    top: int = 10,
    side: str = "any",
) -> list[ConceptMatch]:
    """Features matching `query` from stored explanations (on `side`, see `match_explanations`) and/or MI
    vocabulary words, best first."""
    if results is None and not use_vocab:
        raise ConfigError("selection by concept needs --results (a `sage batch` results file) or --vocab")
    matches: list[ConceptMatch] = []
    if results is not None:
        matches += match_explanations(query, load_explanations(results), top, side)
    if use_vocab:
        if subject is None:
            raise ConfigError("MI vocabulary matching needs the subject")
        matches += match_words(query, mi_word_lists(subject), top)
    best: dict[int, ConceptMatch] = {}
    for m in matches:  # explanation matches come first and win ties
        if m.feature not in best or m.score > best[m.feature].score:
            best[m.feature] = m
    return sorted(best.values(), key=lambda m: (-m.score, m.feature))[:top]
