"""Held-out data for scoring an explanation: contexts its explainer never saw.

Held-out discipline: the explainers (the SAGE agent and the one-shot baseline) see
the feature's seed contexts: `store.top(f, n_top)`, `store.quantile_samples(f,
n_quantile_bins, per_quantile, exclude_top=n_top)` (seed 0) and
`store.random_negatives(f, n_negatives)` (seed 0), with the counts of
`agents.runtime.AgentConfig`; the agent's held-out gate also decides on
`gate_per_quantile` more per bin and `gate_negatives` more negatives
(`agents.seed_draw`); plus whatever corpus contexts the agent used as probes (their
texts are in the explanation's evidence). Scoring data excludes all of them, and
also the top-`exclude_top` contexts (SAGE's rule), and is sampled with its own
fixed seed:

- activating: `per_quantile` random firing contexts from each of `n_quantiles`
  equal-width bins of the context maximum (lowest bin first);
- negatives: `n_negatives` random contexts where the feature never fires;
- reference: mean max activation of the top-`reference_top` contexts (the threshold
  base of generative accuracy; the top contexts are a reference, never scored).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from agents.runtime import AgentConfig
from agents.seed_draw import draw_seed
from sage.errors import require_ints, require_range
from sage.hypotheses.tiers import STRONG_TOP_N
from sage.model.engine_config import ENGINE
from sage.store.math import quantile_bins


@dataclass(frozen=True)
class HeldOutConfig:
    #: activation bins (between 0 and the feature's max) the held-out contexts are drawn from
    n_quantiles: int = 5
    #: held-out contexts per bin
    per_quantile: int = 4
    #: held-out contexts where the feature does not fire
    n_negatives: int = 20
    #: SAGE's rule: the strongest contexts are never scored (the explainer saw them).
    exclude_top: int = 10
    #: generative accuracy's reference: the mean max activation of this many top contexts
    reference_top: int = STRONG_TOP_N
    #: Differs from the seed 0 the explainers sample with.
    seed: int = 1
    #: delphi's fuzzing: tokens above this fraction of their context's maximum are the highlighted ones.
    fuzz_highlight: float = 0.3

    def __post_init__(self) -> None:
        require_ints(self, "n_quantiles", "per_quantile", "n_negatives", "reference_top")
        require_ints(self, "exclude_top", "seed", minimum=0)
        require_range(self, "fuzz_highlight", 0, 1, open_low=True)


HELD_OUT = HeldOutConfig()


@dataclass(frozen=True)
class HeldOut:
    """Scoring data of one feature. Context acts are raw activations; tokens[0] is the sink."""

    feature: int
    max_activation: float
    reference: float
    activating: tuple  # of sage.store.activation_store.Context, each with .quantile
    negatives: tuple  # of sage.store.activation_store.Context
    seen_ids: frozenset[int]
    exclude_texts: frozenset[str]
    settings: HeldOutConfig = HELD_OUT

    @property
    def excluded_ids(self) -> frozenset[int]:
        """Contexts no scorer may use: what the explainer saw plus the scoring data itself."""
        return self.seen_ids | {c.context_id for c in self.activating + self.negatives}


@dataclass(frozen=True)
class FuzzItem:
    """One fuzzing example: body tokens (sink removed) with some positions highlighted.

    correct: True when the highlighted tokens are where the feature really fires.
    """

    tokens: tuple[str, ...]
    highlighted: tuple[int, ...]
    correct: bool


def explainer_seen_ids(store, feature: int, settings=None) -> frozenset[int]:
    """Ids of the seed contexts the explainers are shown for `feature`, and of those the loop's
    held-out gate decides on (see the module docstring)."""
    return draw_seed(store, feature, settings or AgentConfig()).ids()


def evidence_texts(explanations: Iterable[dict]) -> frozenset[str]:
    """Texts an explainer probed (corpus contexts among them must not be scored)."""
    return frozenset(e["text"] for x in explanations if x and "evidence" in x for e in x["evidence"])


def held_out(
    store, feature: int, exclude_texts: Iterable[str] = (), settings: HeldOutConfig = HELD_OUT
) -> HeldOut:
    """The held-out scoring data of `feature` (deterministic for a store, feature and settings)."""
    stats = store.feature_stats(feature)
    top = store.top(feature, settings.reference_top)
    reference = sum(c.max_act for c in top) / len(top) if top else 0.0
    seen = explainer_seen_ids(store, feature) | {
        c.context_id for c in store.top(feature, settings.exclude_top)
    }
    texts = frozenset(exclude_texts)
    activating = _activating(store, feature, seen, texts, settings)
    # a few extra: some may be the explainer's own negatives or contexts it probed
    spare = AgentConfig().n_negatives + AgentConfig().gate_negatives + 4
    negatives = [
        c
        for c in store.random_negatives(feature, settings.n_negatives + spare, seed=settings.seed)
        if c.context_id not in seen and c.text not in texts
    ][: settings.n_negatives]
    return HeldOut(
        feature,
        stats.max_activation,
        reference,
        tuple(activating),
        tuple(negatives),
        frozenset(seen),
        texts,
        settings,
    )


def _activating(store, feature: int, seen: frozenset[int], texts: frozenset[str], s: HeldOutConfig) -> list:
    cids, maxima = store.firing_contexts(feature)
    if seen:
        keep = ~torch.isin(cids, torch.tensor(sorted(seen), dtype=cids.dtype))
        cids, maxima = cids[keep], maxima[keep]
    if not len(cids):
        return []
    bins = quantile_bins(maxima, float(maxima.max()), s.n_quantiles)
    g = torch.Generator().manual_seed(s.seed * 1_000_003 + feature)
    chosen: list[tuple[int, int]] = []
    for b in range(s.n_quantiles):
        pos = torch.nonzero(bins == b).flatten()
        taken = 0
        for p in pos[torch.randperm(len(pos), generator=g)].tolist():
            if taken == s.per_quantile:
                break
            cid = int(cids[p])
            if texts and next(store.iter_texts([cid])) in texts:
                continue  # the agent probed this very context
            chosen.append((cid, b))
            taken += 1
    return store.contexts(feature, [c for c, _ in chosen], [b for _, b in chosen])


def body(ctx) -> list[float]:
    """A context's activations without the sink position(s)."""
    return list(ctx.acts[ENGINE.skip_positions :])


def body_tokens(ctx) -> list[str]:
    return list(ctx.tokens[ENGINE.skip_positions :])


def fuzz_items(held: HeldOut) -> list[FuzzItem]:
    """delphi's fuzzing set: each activating context with its tokens above `fuzz_highlight` x its own
    max highlighted (correct), and each negative with as many random tokens highlighted as activating
    contexts have firing tokens on average, rounded up (incorrect)."""
    s = held.settings
    items = []
    firing_counts = []
    for c in held.activating:
        acts = body(c)
        peak = max(acts, default=0.0)
        if peak <= 0:
            continue
        items.append(
            FuzzItem(
                tuple(body_tokens(c)),
                # delphi's rule: at or above the fraction (delphi/scorers/classifier/sample.py,
                # `_prepare_text`: activations >= threshold * max_activation)
                tuple(i for i, a in enumerate(acts) if a >= s.fuzz_highlight * peak),
                True,
            )
        )
        firing_counts.append(sum(a > 0 for a in acts))
    if not items:
        return []
    n_marked = math.ceil(sum(firing_counts) / len(firing_counts))
    g = torch.Generator().manual_seed(s.seed * 7_919 + held.feature)
    for c in held.negatives:
        toks = body_tokens(c)
        k = min(n_marked, len(toks))
        marked = sorted(torch.randperm(len(toks), generator=g)[:k].tolist())
        items.append(FuzzItem(tuple(toks), tuple(marked), False))
    return items


def highlight(item: FuzzItem, left: str = "<<", right: str = ">>") -> str:
    """The item's text with each run of highlighted tokens wrapped in `left`/`right` (delphi's format)."""
    marked, out, i = set(item.highlighted), [], 0
    while i < len(item.tokens):
        if i in marked:
            j = i
            while j < len(item.tokens) and j in marked:
                j += 1
            out.append(left + "".join(item.tokens[i:j]) + right)
            i = j
        else:
            out.append(item.tokens[i])
            i += 1
    return "".join(out)
