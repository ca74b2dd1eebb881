"""Steering arithmetic on tensors: the edits SAGE applies to the residual stream, and token confidence.

No model here: every function takes tensors (and, for SAE-code edits, the SAE's `decode`
as a plain tensor -> tensor function) and returns tensors, so each edit is unit-tested on
small hand-made inputs. Shapes use `...` for any leading batch/position dims, `d` for the
hook width and `F` for the SAE width. Everything is meant to run in float32: callers cast
bf16 model activations up before editing and back down afterwards.

Strength convention (AxBench): a strength is relative to the feature's max activation
in the activation store, so `strength=4` means "four times the largest activation this
feature reaches on the corpus".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Decode = Callable[[torch.Tensor], torch.Tensor]

#: Norms below this are treated as zero (a zero decoder row, a zero residual).
EPS = 1e-12


def unit_rows(directions: torch.Tensor) -> torch.Tensor:
    """Rows of `directions` [S, d] scaled to unit norm; an all-zero row stays zero (no 0/0)."""
    norms = directions.norm(dim=-1, keepdim=True)
    return torch.where(norms > EPS, directions / norms.clamp_min(EPS), torch.zeros_like(directions))


def add_edit(x: torch.Tensor, directions: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Additive steering: x + sum_s scales[s] * unit(directions[s]).

    x: [..., d]; directions: [S, d] (decoder rows of the steered features); scales: [S]
    (strength * max_act of each feature, in activation units). Returns [..., d].
    """
    return x + scales.to(x.dtype) @ unit_rows(directions.to(x.dtype))


def code_edit(x: torch.Tensor, codes: torch.Tensor, new_codes: torch.Tensor, decode: Decode) -> torch.Tensor:
    """Replace the SAE code of x: decode(new_codes) + (x - decode(codes)).

    Adding back the reconstruction error x - decode(codes) means only the change of code
    reaches the residual stream: x + decode(new_codes) - decode(codes). Both codes are
    decoded in one call so the two reconstructions round identically wherever the codes
    agree. x: [..., d]; codes, new_codes: [..., F].
    """
    both = decode(torch.stack([codes, new_codes]))
    return x + (both[1] - both[0])


def set_codes(codes: torch.Tensor, features: Sequence[int], values: torch.Tensor) -> torch.Tensor:
    """A copy of codes [..., F] with codes[..., features[s]] = values[s] (values: [S])."""
    out = codes.clone()
    out[..., list(features)] = values.to(codes.dtype).expand(*codes.shape[:-1], len(features))
    return out


def clamp_edit(
    x: torch.Tensor, codes: torch.Tensor, decode: Decode, features: Sequence[int], values: torch.Tensor
) -> torch.Tensor:
    """Clamping: encode (codes given), set each feature to its value, decode, add back the error.

    Only the clamped features' codes change, so the residual moves by
    sum_s (values[s] - codes[..., s]) * W_dec[s] for an affine decoder. x: [..., d];
    codes: [..., F]; values: [S] in activation units. Returns [..., d].
    """
    return code_edit(x, codes, set_codes(codes, features, values), decode)


def shortfall(codes: torch.Tensor, features: Sequence[int], targets: torch.Tensor) -> torch.Tensor:
    """[..., S] how far each feature's code is below its target (0 where it is at or above it)."""
    return (targets.to(codes.dtype) - codes[..., list(features)]).clamp_min(0.0)


def amplify_edit(
    x: torch.Tensor, codes: torch.Tensor, decode: Decode, features: Sequence[int], targets: torch.Tensor
) -> torch.Tensor:
    """Amplification (Wu et al., arXiv 2502.15576): raise each feature of the set to its target.

    Each feature's code rises by its shortfall from the target (so a feature already at or
    above its target is left alone), the new code is decoded with the reconstruction error
    added back, and the result is rescaled to the norm x had, so the edit changes the
    direction of the residual, not its size. Positions where no feature falls short are
    returned exactly unchanged (no rescaling, no 0/0). x: [..., d]; codes: [..., F];
    targets: [S] in activation units. Returns [..., d].
    """
    short = shortfall(codes, features, targets)
    new_codes = codes.clone()
    new_codes[..., list(features)] += short
    edited = rescale_to_norm(code_edit(x, codes, new_codes, decode), x)
    return torch.where((short > 0).any(dim=-1, keepdim=True), edited, x)


def rescale_to_norm(v: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """v [..., d] rescaled to the per-position norm of ref [..., d]; a zero v stays zero."""
    vn = v.norm(dim=-1, keepdim=True)
    return torch.where(vn > EPS, v * (ref.norm(dim=-1, keepdim=True) / vn.clamp_min(EPS)), v)


def trigger_mask(trigger_codes: torch.Tensor, threshold: float) -> torch.Tensor:
    """[...] True where any trigger feature's code [..., R] exceeds `threshold`."""
    return (trigger_codes > threshold).any(dim=-1)


def calibrate_edit(
    x: torch.Tensor, edited: torch.Tensor, trigger_codes: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Calibration (Wu et al.): keep the edit only where a trigger feature fires above threshold.

    x, edited: [..., d] (the residual before / after an edit such as `amplify_edit`);
    trigger_codes: [..., R] activations of the trigger features at the same positions.
    Positions where no trigger exceeds the threshold come back exactly as x.
    """
    return apply_at(x, edited, trigger_mask(trigger_codes, threshold))


def apply_at(x: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """edited where mask [...] is True, x elsewhere (x, edited: [..., d])."""
    return torch.where(mask.unsqueeze(-1), edited, x)


# -- token confidence ---------------------------------------------------------------------------
def token_confidence(logits: torch.Tensor, k: int = 1) -> torch.Tensor:
    """C_k(p) = -(1/k) * sum of the log-probabilities of the k most likely next tokens.

    logits: [..., V] (any float dtype; computed in float32). Returns [...]. With k = 1 this
    is the surprisal of the top token: small when the model is sure of its next token.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -logp.topk(k, dim=-1).values.mean(dim=-1)


def delta_token_confidence(logits_int: torch.Tensor, logits_base: torch.Tensor, k: int = 1) -> torch.Tensor:
    """dTC = C_k(p_int) - C_k(p_base) (Wang et al., arXiv 2510.03659). logits_*: [..., V] -> [...]."""
    return token_confidence(logits_int, k) - token_confidence(logits_base, k)


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """exp(mean negative log-likelihood) of targets [N] under logits [N, V] (row i predicts targets[i])."""
    if targets.numel() == 0:
        return float("nan")
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="mean")
    return float(torch.exp(nll))
