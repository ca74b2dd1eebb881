"""Mutual-information vocabulary explanations (Wu et al., arXiv 2502.15576): the tensor math.

Pure functions, no model and no files: they take decoder directions and word /
token embeddings and return rankings and statistics. `sage/vocab.py` does the I/O.

Notation: F features, W vocabulary words, V model tokens, d model width.
s[c, w] = u_c . e_w, where u_c is feature c's decoder direction passed through
the model's final norm and scaled to unit length, and e_w the word's embedding
in the unembedding space.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm


def unit_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """[N, d] -> [N, d] rows scaled to unit L2 norm (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def mean_token_embeddings(unembed: torch.Tensor, token_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """Embedding of each word = mean of the unembedding rows of its tokens.

    unembed: [V, d]; token_ids: one non-empty list of token ids per word. Returns [W, d] fp32.
    """
    if any(len(ids) == 0 for ids in token_ids):
        raise ValueError("every word needs at least one token")
    flat = torch.tensor([t for ids in token_ids for t in ids], dtype=torch.long)
    offsets = torch.tensor([0] + [len(ids) for ids in token_ids[:-1]], dtype=torch.long).cumsum(0)
    return torch.nn.functional.embedding_bag(flat, unembed.float(), offsets, mode="mean")


def _chunks(n: int, size: int, progress: bool, desc: str):
    return tqdm(range(0, n, size), desc=desc, unit="chunk", disable=not progress, leave=False)


def feature_logsumexp(
    dirs: torch.Tensor, emb: torch.Tensor, beta: float, chunk: int, progress: bool = False
) -> torch.Tensor:
    """First pass: for every word, logsumexp over ALL features of s[c, w] / beta.

    dirs: [F, d] unit directions; emb: [W, d]. Returns [W]. Accumulated chunk by
    chunk (logaddexp of per-chunk logsumexps) so that [F, W] is never held at once.
    """
    lse = torch.full((emb.shape[0],), -math.inf, dtype=torch.float32)
    for a in _chunks(dirs.shape[0], chunk, progress, "MI pass 1/2"):
        s = dirs[a : a + chunk].float() @ emb.float().T
        lse = torch.logaddexp(lse, torch.logsumexp(s / beta, dim=0))
    return lse


def mi_scores(
    s: torch.Tensor, lse_features: torch.Tensor, n_features: int, alpha: float, beta: float
) -> torch.Tensor:
    """MI ranking score of every word for a block of features.

    s: [C, W] scores of C features; lse_features: [W] from `feature_logsumexp`
    (over all n_features). Returns [C, W]:

        p(w|c) * (log p(c|w) - log p(c)),   p(c) = 1 / n_features

    which is feature c's share of I(C; W) = sum_c p(c) sum_w p(w|c) log(p(c|w) / p(c)),
    up to the constant factor p(c). The paper maximises MI; written as
    p(w|c) * log p(c|w) alone the term is <= 0 and its maximum is reached by words
    with p(w|c) -> 0, so sorting it in either direction either favours improbable
    words or generic ones. Keeping the prior turns log p(c|w) into the pointwise
    mutual information: positive when w points to c more than to an average feature,
    negative when w belongs to other features. Words first in the ranking are both
    probable under c and specific to c.
    """
    log_p_w_given_c = torch.log_softmax(s / alpha, dim=1)
    pmi = s / beta - lse_features + math.log(n_features)
    return log_p_w_given_c.exp() * pmi


def reference_mi_scores(
    s: torch.Tensor, lse_features: torch.Tensor, alpha: float, beta: float
) -> torch.Tensor:
    """The released code's score (MI_explainer.py, `MIExplainer.explain`): p(w|c) * log p(c|w).

    s: [C, W]; lse_features: [W] from `feature_logsumexp` (the reference's log_softmax over dim 0
    runs over every feature at once). Returns [C, W]. The term is <= 0; the reference sorts it in
    descending order, so words with p(w|c) -> 0 or p(c|w) -> 1 come first (see `mi_scores` for why
    ours keeps the prior instead).
    """
    return torch.log_softmax(s / alpha, dim=1).exp() * (s / beta - lse_features)


#: MI objectives by name: "ours" (`mi_scores`, PMI) and "reference" (`reference_mi_scores`)
OBJECTIVES = ("ours", "reference")


def mi_rank(
    dirs: torch.Tensor,
    emb: torch.Tensor,
    alpha: float,
    beta: float,
    keep: int,
    chunk: int,
    progress: bool = False,
    objective: str = "ours",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `keep` words of every feature by the MI score (`mi_scores`, or `reference_mi_scores` when
    objective is "reference").

    dirs: [F, d] feature directions; emb: [W, d] word embeddings.
    Returns (indices [F, keep] int64 into the W words, scores [F, keep] fp32), best first.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown MI objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    n_features, keep = dirs.shape[0], min(keep, emb.shape[0])
    lse = feature_logsumexp(dirs, emb, beta, chunk, progress)
    idx = torch.empty(n_features, keep, dtype=torch.long)
    val = torch.empty(n_features, keep, dtype=torch.float32)
    for a in _chunks(n_features, chunk, progress, "MI pass 2/2"):
        s = dirs[a : a + chunk].float() @ emb.float().T
        scores = (
            mi_scores(s, lse, n_features, alpha, beta)
            if objective == "ours"
            else reference_mi_scores(s, lse, alpha, beta)
        )
        top = scores.topk(keep, dim=1)
        val[a : a + chunk], idx[a : a + chunk] = top.values, top.indices
    return idx, val


def logit_lens_top(
    dirs: torch.Tensor,
    unembed: torch.Tensor,
    keep: int,
    chunk: int,
    exclude: Sequence[int] = (),
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit-lens baseline: the tokens whose unembedding rows best match each direction.

    dirs: [F, d]; unembed: [V, d]; `exclude`: token ids never listed (special tokens).
    Returns (token ids [F, keep] int64, dirs . unembed [F, keep] fp32), best first.
    """
    unembed = unembed.float()
    mask = torch.zeros(unembed.shape[0], dtype=torch.bool)
    mask[list(exclude)] = True
    keep = min(keep, int((~mask).sum()))
    idx = torch.empty(dirs.shape[0], keep, dtype=torch.long)
    val = torch.empty(dirs.shape[0], keep, dtype=torch.float32)
    for a in _chunks(dirs.shape[0], chunk, progress, "logit lens"):
        s = (dirs[a : a + chunk].float() @ unembed.T).masked_fill_(mask, -math.inf)
        top = s.topk(keep, dim=1)
        val[a : a + chunk], idx[a : a + chunk] = top.values, top.indices
    return idx, val


@dataclass(frozen=True)
class ExplanationStats:
    """Statistics over the word lists of many features (each a share in [0, 1]).

    diversity: distinct words / all listed words (1 = no word is reused across features).
    lexical: share of listed words that are superficial (very frequent or short).
    dominate: share of listed words that appear in the lists of more than a given
      share of the features.
    """

    diversity: float
    lexical: float
    dominate: float
    n_features: int
    top: int

    def to_dict(self) -> dict:
        return asdict(self)


def explanation_stats(
    lists: Sequence[Sequence[str]], frequent: set[str], *, superficial_chars: int, dominate_share: float
) -> ExplanationStats:
    """Diversity / lexical / dominate of per-feature word lists (the paper's corpus statistics).

    lists: one list of normalised words (stripped, lower-case) per feature, all of
    the same length. A listed word is superficial if it is in `frequent` (the most
    frequent vocabulary words) or shorter than `superficial_chars`; it dominates if
    the lists of more than `dominate_share` of the features hold it.
    """
    if not lists or not lists[0]:
        raise ValueError("need at least one feature with at least one word")
    slots = [w for ws in lists for w in ws]
    n = len(slots)
    features_per_word = Counter(w for ws in lists for w in set(ws))
    limit = dominate_share * len(lists)
    superficial = sum(1 for w in slots if w in frequent or len(w) < superficial_chars)
    dominating = sum(1 for w in slots if features_per_word[w] > limit)
    return ExplanationStats(
        diversity=len(features_per_word) / n,
        lexical=superficial / n,
        dominate=dominating / n,
        n_features=len(lists),
        top=len(lists[0]),
    )


@dataclass(frozen=True)
class ReferenceStats:
    """The statistics as the MI paper's released code computes them (JacksonWuxs/
    SteeringLLMs_with_MIExplanations, MI_explainer.py, `__main__`, the lines after the
    explanation loop), each a share in [0, 1]:

    diversity: distinct non-superficial listed words / non-superficial words of the vocabulary
      the method draws on (5000 words for MI; the model's tokens for the logit lens).
    lexical: distinct superficial listed words / superficial words of that vocabulary.
    dominate: distinct listed words held by more than a given share of the features' lists /
      distinct listed words.
    total: diversity - lexical (the reference prints it as "Total").
    """

    diversity: float
    lexical: float
    dominate: float
    total: float
    n_features: int
    top: int
    vocabulary: int

    def to_dict(self) -> dict:
        return asdict(self)


def reference_stats(
    lists: Sequence[Sequence[str]],
    vocabulary: Sequence[str],
    frequent: set[str],
    *,
    superficial_chars: int,
    dominate_share: float,
) -> ReferenceStats:
    """Diversity / lexical / dominate of per-feature word lists by the reference's definitions.

    lists: one list of normalised words per feature; vocabulary: every word the method could list
    (normalised the same way); a vocabulary word is superficial if it is in `frequent` or shorter than
    `superficial_chars`. Deviations: the reference divides a word's feature count by the last feature
    index (`idx`, i.e. n - 1); here by n - 1 as well, but at least 1. An empty side of a ratio gives 0.
    """
    if not lists or not lists[0]:
        raise ValueError("need at least one feature with at least one word")
    vocab = set(vocabulary)
    superficial = {w for w in vocab if w in frequent or len(w) < superficial_chars}
    features_per_word = Counter(w for ws in lists for w in set(ws))
    uniques = set(features_per_word)
    limit = dominate_share * max(len(lists) - 1, 1)
    non_sup = len(vocab) - len(superficial)
    # a listed entry outside the vocabulary (an id the tokenizer cannot decode) counts for neither side
    diversity = len((uniques & vocab) - superficial) / non_sup if non_sup else 0.0
    lexical = len(uniques & superficial) / len(superficial) if superficial else 0.0
    return ReferenceStats(
        diversity=diversity,
        lexical=lexical,
        dominate=sum(1 for c in features_per_word.values() if c > limit) / len(uniques),
        total=diversity - lexical,
        n_features=len(lists),
        top=len(lists[0]),
        vocabulary=len(vocab),
    )
