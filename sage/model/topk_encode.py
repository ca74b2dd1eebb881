"""The sparse encode of a sae-lens TopK SAE: its k winners per position, straight from `topk`.

`TopKSAE.encode` builds a dense [..., d_sae] tensor (and sae-lens's sparse option a COO tensor) that
the engine would only take apart again; `topk_encode` runs the same steps and keeps `topk`'s
(indices, values).

The encoder's matrix product may run in bfloat16 (`EngineConfig.bf16_encoder`): when the model runs in
bf16, its hook activations carry bf16 precision already, and the float32 product was the largest cost
after the forward on a CPU (0.82 s of 4.3 s per 128 x 129 tokens, against 0.26 s in bf16). It moves
results about as far from a float32 reference as the bf16 forward itself does
(`benchmarks/precision_tolerance.py`, docs/performance.md). The bf16 weights are cast once and kept
until the SAE's weights change, one copy per SAE however many engines use it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from sage.model.sparse import SparseActs


def standard_topk(sae) -> int | None:
    """k when `sae` is a sae-lens TopK SAE whose `encode` is sae-lens's own (not overridden), else None."""
    from sae_lens.saes.topk_sae import TopK, TopKSAE

    fn = getattr(sae, "activation_fn", None)
    return (
        fn.k
        if isinstance(sae, TopKSAE) and isinstance(fn, TopK) and type(sae).encode is TopKSAE.encode
        else None
    )


def product_dtype(sae, hidden_dtype: torch.dtype, bf16_encoder: bool) -> torch.dtype:
    """The dtype the engine's encoder product runs in for `sae` on hook activations of `hidden_dtype`:
    bf16 for a standard TopK SAE on a bf16 model when `bf16_encoder`, else the SAE's own dtype."""
    if bf16_encoder and hidden_dtype == torch.bfloat16 and standard_topk(sae) is not None:
        return torch.bfloat16
    return sae.dtype


@dataclass(frozen=True)
class EncoderWeights:
    """The encoder's tensors in the dtype its product runs in.

    W_enc: [d_in, d_sae]; b_enc: [d_sae]; dec_norm: [d_sae] decoder row norms, or None when the SAE
    does not rescale its pre-activations by them. key: what they were cast from (see `_key`).
    """

    W_enc: torch.Tensor
    b_enc: torch.Tensor
    dec_norm: torch.Tensor | None
    key: tuple


def _key(sae, dtype: torch.dtype) -> tuple:
    """Changes whenever the SAE's weights are replaced or updated in place (a tensor's `_version`)."""
    return (dtype, *((p.data_ptr(), p._version, p.device) for p in (sae.W_enc, sae.b_enc, sae.W_dec)))


def encoder_weights(sae, dtype: torch.dtype, cached: EncoderWeights | None = None) -> EncoderWeights:
    """`sae`'s encoder tensors in `dtype`: `cached` when it still matches the SAE, else cast afresh."""
    key = _key(sae, dtype)
    if cached is not None and cached.key == key:
        return cached
    with torch.no_grad():
        norm = sae.W_dec.norm(dim=-1).to(dtype) if sae.cfg.rescale_acts_by_decoder_norm else None
        return EncoderWeights(sae.W_enc.to(dtype), sae.b_enc.to(dtype), norm, key)


#: per SAE module, its cast weights by dtype; entries go with the SAE (weak keys)
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_encoder_weights(sae, dtype: torch.dtype) -> EncoderWeights:
    """`encoder_weights`, cast once per SAE and dtype and shared by every engine of that SAE (a
    Gemma-2-2B 16k SAE's bf16 copy is 75 MB), recast when the SAE's weights change."""
    per_dtype = _SHARED.setdefault(sae, {})
    per_dtype[dtype] = encoder_weights(sae, dtype, per_dtype.get(dtype))
    return per_dtype[dtype]


@torch.no_grad()
def topk_encode(sae, hidden: torch.Tensor, k: int, weights: EncoderWeights) -> SparseActs:
    """`TopKSAE.encode` step by step (the same input processing, hooks, pre-activations and decoder-norm
    rescaling), the product in `weights`' dtype, keeping `topk`'s (indices, values).

    hidden: [..., d_in] hook activations (any dtype) -> SparseActs [..., k], values float32 (>= 0).
    """
    sae_in = sae.process_sae_in(hidden)  # in the SAE's dtype, as sae-lens does
    flat = sae_in.reshape(-1, sae_in.shape[-1]).to(weights.W_enc.dtype)
    pre = sae.hook_sae_acts_pre(torch.addmm(weights.b_enc, flat, weights.W_enc))
    if weights.dec_norm is not None:
        pre = pre * weights.dec_norm
    values, indices = pre.topk(k, dim=-1, sorted=False)
    lead = sae_in.shape[:-1]
    return SparseActs(indices.reshape(*lead, k), values.float().relu().reshape(*lead, k), pre.shape[-1])
