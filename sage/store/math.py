"""Pure tensor bookkeeping for the activation store (no model, no I/O)."""

from __future__ import annotations

import torch


def quantile_bins(maxima: torch.Tensor, max_act: float, n_bins: int) -> torch.Tensor:
    """Bin index (0 = lowest) of each positive context maximum, equal-width bins over (0, max_act]."""
    if max_act <= 0:
        return torch.zeros_like(maxima, dtype=torch.long)
    b = torch.ceil(maxima / max_act * n_bins).long() - 1
    return b.clamp(0, n_bins - 1)


def sample_per_bin(
    bins: torch.Tensor, n_bins: int, per_bin: int, generator: torch.Generator
) -> list[tuple[int, int]]:
    """Up to `per_bin` positions of `bins` per bin, chosen at random. Returns (position, bin) pairs, low
    bins first."""
    out: list[tuple[int, int]] = []
    for b in range(n_bins):
        pos = torch.nonzero(bins == b).flatten()
        if len(pos) == 0:
            continue
        chosen = pos[torch.randperm(len(pos), generator=generator)[:per_bin]]
        out.extend((int(p), b) for p in chosen)
    return out


def quantile_picks(
    cids: torch.Tensor, maxima: torch.Tensor, exclude: list[int], n_bins: int, per_bin: int, seed: int
) -> list[tuple[int, int]]:
    """Random firing contexts from each of `n_bins` equal-width bins of their maximum (lowest bin first).

    cids [N] context ids and maxima [N] their max activation (every context where a feature fires);
    contexts in `exclude` are left out. Returns (context id, bin) pairs; the same inputs and `seed`
    give the same picks (the store's quantile samples and the Neuronpedia source's share this rule).
    """
    if exclude:
        keep = ~torch.isin(cids, torch.tensor(list(exclude), dtype=cids.dtype))
        cids, maxima = cids[keep], maxima[keep]
    if not len(cids):
        return []
    bins = quantile_bins(maxima, float(maxima.max()), n_bins)
    picked = sample_per_bin(bins, n_bins, per_bin, torch.Generator().manual_seed(seed))
    return [(int(cids[p]), b) for p, b in picked]
