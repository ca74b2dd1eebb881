"""Per-feature mining statistics, reduced on the device one batch at a time (pure tensor code).

For every feature the store keeps its top-k contexts (max activation, context id, per-token
activations), how often it fires, the sum of its activations and its maximum, plus the sparse list of
(context, feature, max) for every context where a feature fires. `MiningState.update` folds one batch
of sparse activations ([B, T, k] pairs from `ActivationEngine.sparse_acts`) into these tensors where
they live; only the sparse per-batch maxima and, at a save, the state itself leave the device.

Only features whose batch maximum beats their current k-th best context take part in the top-k merge,
and only their per-token columns are built, so a batch costs O(B x T x k) plus the merge of the few
features that changed, instead of O(F x (K + B) x T).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from sage.model.sparse import SparseActs


def top_k_slots(vals: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """[R, k] column positions of the k best entries of each row of vals [R, N]: highest value first,
    ties to the smaller context id (ids [R, N]), so that merging shards in any grouping gives the
    same answer as one pass (where the earlier context wins a tie)."""
    by_id = torch.argsort(ids, dim=1, stable=True)
    by_val = torch.argsort(vals.gather(1, by_id), dim=1, descending=True, stable=True)
    return by_id.gather(1, by_val)[:, :k]


@dataclass
class MiningState:
    """top_vals [F, K] float32 (-inf = empty slot; in no order while mining, best first after
    `sorted`), top_ids [F, K] int64 (-1 = empty),
    top_acts [F, K, T] float32 (per-token activations of the kept contexts), fire_count [F] and
    act_sum [F] float64 (over tokens), max_act [F] float32."""

    top_vals: torch.Tensor
    top_ids: torch.Tensor
    top_acts: torch.Tensor
    fire_count: torch.Tensor
    act_sum: torch.Tensor
    max_act: torch.Tensor

    @classmethod
    def empty(cls, d_sae: int, top_k: int, context_len: int, device: str | torch.device = "cpu"):
        return cls(
            top_vals=torch.full((d_sae, top_k), float("-inf"), device=device),
            top_ids=torch.full((d_sae, top_k), -1, dtype=torch.long, device=device),
            top_acts=torch.zeros((d_sae, top_k, context_len), device=device),
            fire_count=torch.zeros(d_sae, dtype=torch.float64, device=device),
            act_sum=torch.zeros(d_sae, dtype=torch.float64, device=device),
            max_act=torch.zeros(d_sae, device=device),
        )

    def to(self, device: str | torch.device) -> MiningState:
        return MiningState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @torch.no_grad()
    def update(
        self, acts: SparseActs, context_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fold one batch in. acts: [B, T, k] active features of B contexts of T tokens (sinks and
        padding empty); context_ids: [B] int64. Both on this state's device.

        Returns the batch's sparse maxima (context ids [N], features [N], max activation [N]) of every
        (context, feature) pair where the feature fires, on the device.
        """
        B, T, _ = acts.values.shape
        F, K = self.top_vals.shape
        dev = self.top_vals.device
        fires = acts.values > 0
        pos = torch.nonzero(fires)  # [n, 3]: b, t, slot
        b, t = pos[:, 0], pos[:, 1]
        f = acts.indices[fires]
        v = acts.values[fires]
        self.fire_count.index_add_(0, f, torch.ones_like(v, dtype=torch.float64))
        self.act_sum.index_add_(0, f, v.double())
        bmax = torch.zeros(B * F, device=dev).scatter_reduce_(0, b * F + f, v, "amax").view(B, F)
        self.max_act = torch.maximum(self.max_act, bmax.amax(dim=0))
        nz = torch.nonzero(bmax > 0)
        nz_b, nz_f = nz[:, 0], nz[:, 1]
        nz_max = bmax[nz_b, nz_f]
        # A context enters a feature's top-k only by beating its k-th best (ties keep the earlier one).
        enter = nz_max > self.top_vals.amin(dim=1)[nz_f]
        if enter.any():
            self._merge(nz_b[enter], nz_f[enter], nz_max[enter], b, t, f, v, context_ids, T)
        return context_ids[nz_b], nz_f, nz_max

    def _merge(self, cb, cf, cmax, b, t, f, v, context_ids, T) -> None:
        """Merge candidate (context cb, feature cf, max cmax) pairs into the top-k of their features;
        (b, t, f, v) are the batch's firing entries, from which the entering contexts' columns are
        built. Slots keep their place: an entering context takes an evicted one's slot, so only the
        entering [T] columns are written, never a whole [K, T] row."""
        B = len(context_ids)
        F, K = self.top_vals.shape
        dev = self.top_vals.device
        rows = torch.unique(cf)
        row_of = torch.full((F,), -1, dtype=torch.long, device=dev)
        row_of[rows] = torch.arange(len(rows), device=dev)
        cand = torch.full((len(rows), B), float("-inf"), device=dev)
        cand[row_of[cf], cb] = cmax
        all_vals = torch.cat([self.top_vals[rows], cand], dim=1)  # [R, K + B]
        all_ids = torch.cat([self.top_ids[rows], context_ids.expand(len(rows), -1)], dim=1)
        sel = top_k_slots(all_vals, all_ids, K)  # [R, K]
        # old slots that survive; the others are evicted and handed to the entering contexts in order
        kept = torch.zeros((len(rows), K + 1), dtype=torch.long, device=dev)
        kept.scatter_add_(1, sel.clamp(max=K), torch.ones_like(sel))
        free_slots = torch.argsort(kept[:, :K], dim=1, stable=True)  # evicted slots first
        entering = sel >= K
        incoming = sel.gather(1, torch.argsort((~entering).long(), dim=1, stable=True))  # entering first
        r, j = torch.nonzero(torch.arange(K, device=dev) < entering.sum(dim=1, keepdim=True), as_tuple=True)
        feat, slot, src = rows[r], free_slots[r, j], incoming[r, j]
        bi = src - K
        self.top_vals[feat, slot] = all_vals[r, src]
        self.top_ids[feat, slot] = context_ids[bi]
        # the per-token columns of just the entering (context, feature) pairs
        pair_of = torch.full((B, F), -1, dtype=torch.long, device=dev)
        pair_of[bi, feat] = torch.arange(len(feat), device=dev)
        pid = pair_of[b, f]
        hit = pid >= 0
        cols = torch.zeros((len(feat), T), device=dev)
        cols[pid[hit], t[hit]] = v[hit]
        self.top_acts[feat, slot] = cols

    def sorted(self) -> MiningState:
        """The same state with each feature's contexts best first (ties: smaller context id first), as
        the store saves it; mining keeps slots in place instead."""
        order = top_k_slots(self.top_vals, self.top_ids, self.top_vals.shape[1])
        T = self.top_acts.shape[-1]
        return MiningState(
            top_vals=self.top_vals.gather(1, order),
            top_ids=self.top_ids.gather(1, order),
            top_acts=self.top_acts.gather(1, order.unsqueeze(-1).expand(-1, -1, T)),
            fire_count=self.fire_count,
            act_sum=self.act_sum,
            max_act=self.max_act,
        )

    def merge(self, other: MiningState) -> MiningState:
        """The state of mining both states' contexts (their context ids must not overlap): top-k of the
        union, summed counts, the larger maximum. Associative and commutative (ties go to the smaller
        context id): shards mined apart and merged equal one pass over all of them."""
        all_vals = torch.cat([self.top_vals, other.top_vals], dim=1)
        all_ids = torch.cat([self.top_ids, other.top_ids], dim=1)
        sel = top_k_slots(all_vals, all_ids, self.top_vals.shape[1])
        vals, ids = all_vals.gather(1, sel), all_ids.gather(1, sel)
        acts = torch.cat([self.top_acts, other.top_acts], dim=1)
        return MiningState(
            top_vals=vals,
            top_ids=torch.where(vals > float("-inf"), ids, -1),
            top_acts=acts.gather(1, sel.unsqueeze(-1).expand(-1, -1, acts.shape[-1])),
            fire_count=self.fire_count + other.fire_count,
            act_sum=self.act_sum + other.act_sum,
            max_act=torch.maximum(self.max_act, other.max_act),
        )
