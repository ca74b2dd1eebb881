"""The store contexts the seed node draws for a feature, for the loop and for its held-out gate.

The evaluation draws the same set (`sage.evaluation.data.explainer_seen_ids`) to keep it out of its
scoring data, so both read it from here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedDraw:
    """The store contexts the seed node reads for one feature: what the loop sees (`top`, `quantiles`,
    `negatives`) and what only the held-out gate sees (`gate_quantiles`, `gate_negatives`)."""

    top: list
    quantiles: list
    negatives: list
    gate_quantiles: list
    gate_negatives: list

    def ids(self) -> frozenset[int]:
        """Every context id drawn (the evaluation excludes them all from its scoring data)."""
        groups = (self.top, self.quantiles, self.negatives, self.gate_quantiles, self.gate_negatives)
        return frozenset(c.context_id for g in groups for c in g)


def draw_seed(store, feature: int, s) -> SeedDraw:
    """The seed contexts of `feature` under settings `s` (an `AgentConfig`). The gate's extra draws
    extend the seed's own: each bin's random order and the negatives' random order are the same for
    any sample size, so the first `per_quantile` per bin and the first `n_negatives` are what a draw
    without the gate extras would give."""
    per = s.per_quantile
    quant = store.quantile_samples(feature, s.n_quantile_bins, per + s.gate_per_quantile, exclude_top=s.n_top)
    rank = defaultdict(int)
    seen, gate_q = [], []
    for c in quant:  # low bins first, each bin in its random order
        (seen if rank[c.quantile] < per else gate_q).append(c)
        rank[c.quantile] += 1
    neg = store.random_negatives(feature, s.n_negatives + s.gate_negatives)
    return SeedDraw(store.top(feature, s.n_top), seen, neg[: s.n_negatives], gate_q, neg[s.n_negatives :])
