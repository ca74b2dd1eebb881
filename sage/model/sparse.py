"""Sparse SAE activations: the few active features of each token as (indices, values) pairs.

A TopK SAE has at most k active features per token and a ReLU or JumpReLU SAE only a few hundred, out
of thousands. Keeping only those pairs lets activations stay on the device and leave it small. Pure
tensor code: no model, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SparseActs:
    """Active features of each position.

    indices: int64 [..., k] feature ids; values: float32 [..., k] activations (>= 0).
    A slot whose value is 0 is empty (its index means nothing); a feature appears at most once per
    position. d_sae: the SAE's width, for `to_dense`.
    """

    indices: torch.Tensor
    values: torch.Tensor
    d_sae: int

    @property
    def k(self) -> int:
        return self.values.shape[-1]

    def to(self, device: str | torch.device) -> SparseActs:
        return SparseActs(self.indices.to(device), self.values.to(device), self.d_sae)

    def __getitem__(self, key) -> SparseActs:
        """Index the leading (position) dimensions, as for a tensor [..., k]."""
        return SparseActs(self.indices[key], self.values[key], self.d_sae)

    def masked(self, keep: torch.Tensor) -> SparseActs:
        """Empty every slot of the positions where `keep` [...] (bool) is False."""
        return SparseActs(self.indices, self.values * keep.unsqueeze(-1).to(self.values.dtype), self.d_sae)

    def to_dense(self) -> torch.Tensor:
        """float32 [..., d_sae]."""
        v = self.values
        out = torch.zeros(*v.shape[:-1], self.d_sae, dtype=v.dtype, device=v.device)
        return out.scatter_add_(-1, self.indices, self.values)

    def columns(self, features: Sequence[int]) -> torch.Tensor:
        """float32 [..., len(features)]: the activations of `features` only, without a dense tensor."""
        feats = torch.as_tensor(list(features), dtype=self.indices.dtype, device=self.indices.device)
        hit = self.indices.unsqueeze(-1) == feats  # [..., k, F]
        return (hit * self.values.unsqueeze(-1)).sum(dim=-2)


def sparsify(dense: torch.Tensor, k: int | None = None) -> SparseActs:
    """The `k` largest activations of each position of `dense` [..., d_sae] (k = the largest number of
    non-zero activations of any position when None). Exact whenever no position has more than k
    non-zero activations."""
    if k is None:
        k = max(int((dense > 0).sum(dim=-1).max()) if dense.numel() else 0, 1)
    values, indices = dense.topk(min(k, dense.shape[-1]), dim=-1, sorted=False)
    return SparseActs(indices, values.clamp_min(0.0), dense.shape[-1])
