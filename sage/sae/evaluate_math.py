"""Pure SAE-quality arithmetic (accumulated over batches)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ReconstructionTally:
    """Running sums for fraction of variance explained, L0 and dead features."""

    d_sae: int
    n: int = 0
    sum_x: torch.Tensor | None = None
    sum_x2: float = 0.0
    sum_err2: float = 0.0
    sum_l0: float = 0.0
    fired: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def add(self, x: torch.Tensor, x_hat: torch.Tensor, codes: torch.Tensor) -> None:
        """x, x_hat: [N, d_in]; codes: [N, d_sae]."""
        x, x_hat = x.double(), x_hat.double()
        self.n += x.shape[0]
        self.sum_x = x.sum(0) if self.sum_x is None else self.sum_x + x.sum(0)
        self.sum_x2 += float((x**2).sum())
        self.sum_err2 += float(((x - x_hat) ** 2).sum())
        self.sum_l0 += float((codes > 0).sum())
        fired = (codes > 0).any(0)
        self.fired = fired if self.fired is None else self.fired | fired

    def fve(self) -> float:
        """1 - SSE / total sum of squares around the mean vector."""
        sst = self.sum_x2 - float((self.sum_x**2).sum()) / self.n
        return 1.0 - self.sum_err2 / sst

    def l0(self) -> float:
        return self.sum_l0 / self.n

    def dead_fraction(self) -> float:
        return 1.0 - float(self.fired.sum()) / self.d_sae


def ce_loss_score(ce_clean: float, ce_spliced: float, ce_zero: float) -> float:
    """1 - (CE_spliced - CE_clean) / (CE_zero_ablation - CE_clean): 1 = lossless, 0 = as bad as zeroing."""
    return 1.0 - (ce_spliced - ce_clean) / (ce_zero - ce_clean)


def evenly_spaced(length: int, n: int) -> list[int]:
    """`min(n, length)` distinct indices into a sequence of `length`, spread evenly from start to end."""
    if n >= length:
        return list(range(length))
    return [i * length // n for i in range(n)]
