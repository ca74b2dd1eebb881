"""Pure merge of mined statistics: the activation store of a corpus from the stores of its parts.

Mining is split over shards (contiguous runs of corpus contexts, `sage.store.shards`); each shard keeps
what the whole store keeps, over its own contexts. Merging is exact: per-feature top-k contexts by
(max activation descending, context id ascending), a total order on distinct contexts, so the merge is
associative and commutative; firing counts and maxima add and max exactly; activation sums add in
float64 (equal to one pass up to float64 rounding, ~1e-16 relative); the per-context maxima of firing
contexts (what quantile samples are drawn from) are concatenated. No model, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sage.store.math import top_order

#: the tensors of a store's `state.safetensors`, in the order `MinedState` holds them
STATE_KEYS = ("top_vals", "top_ids", "top_acts", "fire_count", "act_sum", "max_act")
#: the tensors of a `segment_NNNNN.safetensors`
SEGMENT_KEYS = ("token_ids", "ctx", "feat", "max")


@dataclass(frozen=True)
class MinedState:
    """Per-feature statistics over some contexts (F features, K kept contexts, T tokens per context).

    top_vals [F, K] float32: max activation of each kept context, strongest first (-inf = empty slot);
    top_ids [F, K] int64: their context ids (-1 = empty slot); top_acts [F, K, T]: their per-token
    activations; fire_count [F] float64: tokens where the feature is > 0; act_sum [F] float64: sum of
    its activations; max_act [F] float32: its largest activation (0 when it never fired).
    """

    top_vals: torch.Tensor
    top_ids: torch.Tensor
    top_acts: torch.Tensor
    fire_count: torch.Tensor
    act_sum: torch.Tensor
    max_act: torch.Tensor

    @classmethod
    def empty(cls, n_features: int, top_k: int, context_len: int, acts_dtype=torch.float16) -> MinedState:
        """The identity of `merge`: statistics over no context."""
        F, K, T = n_features, top_k, context_len
        return cls(
            torch.full((F, K), float("-inf")),
            torch.full((F, K), -1, dtype=torch.long),
            torch.zeros((F, K, T), dtype=acts_dtype),
            torch.zeros(F, dtype=torch.float64),
            torch.zeros(F, dtype=torch.float64),
            torch.zeros(F),
        )

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> MinedState:
        return cls(*(tensors[k] for k in STATE_KEYS))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in STATE_KEYS}


def shift_ids(state: MinedState, offset: int) -> MinedState:
    """`state` with its context ids moved by `offset` (a shard numbers its contexts from 0)."""
    ids = torch.where(state.top_ids >= 0, state.top_ids + offset, state.top_ids)
    return MinedState(state.top_vals, ids, state.top_acts, state.fire_count, state.act_sum, state.max_act)


def merge(a: MinedState, b: MinedState) -> MinedState:
    """The statistics of the contexts of `a` and of `b` together (their context ids must not overlap).
    Associative and commutative up to float64 rounding of `act_sum`; `MinedState.empty` is the identity."""
    if a.top_vals.shape != b.top_vals.shape or a.top_acts.shape != b.top_acts.shape:
        shapes = f"{tuple(a.top_acts.shape)} and {tuple(b.top_acts.shape)}"
        raise ValueError(f"cannot merge mined statistics of shapes {shapes} (features, top-k, context)")
    k = a.top_vals.shape[1]
    vals = torch.cat([a.top_vals, b.top_vals], dim=1)  # [F, 2K]
    ids = torch.cat([a.top_ids, b.top_ids], dim=1)
    acts = torch.cat([a.top_acts, b.top_acts.to(a.top_acts.dtype)], dim=1)  # [F, 2K, T]
    idx = top_order(vals, ids, k)
    return MinedState(
        torch.gather(vals, 1, idx),
        torch.gather(ids, 1, idx),
        torch.gather(acts, 1, idx.unsqueeze(-1).expand(-1, -1, acts.shape[-1])),
        a.fire_count + b.fire_count,
        a.act_sum + b.act_sum,
        torch.maximum(a.max_act, b.max_act),
    )


def shift_segment(segment: dict[str, torch.Tensor], offset: int) -> dict[str, torch.Tensor]:
    """A segment's tensors with its context ids moved by `offset`: token_ids [N, T] of its contexts,
    and one (ctx, feat, max) triple per (context, feature) where the feature fires."""
    return {**segment, "ctx": segment["ctx"] + offset}
