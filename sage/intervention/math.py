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


def shortfall(pre_acts: torch.Tensor, magnitude: float) -> torch.Tensor:
    """[..., S] how far each feature of the set is below the magnitude m: relu(m - relu(pre_acts)).

    pre_acts: [..., S] the set's encoder pre-activations (before any TopK mask or threshold).
    """
    return (magnitude - pre_acts.clamp_min(0.0)).clamp_min(0.0)


def amplify_edit(
    x: torch.Tensor, pre_acts: torch.Tensor, dec_rows: torch.Tensor, magnitude: float
) -> torch.Tensor:
    """Amplification exactly as released with Wu et al. (arXiv 2502.15576): JacksonWuxs/
    SteeringLLMs_with_MIExplanations, autoencoder.py, `TopKSAE.edit_generate` (the `enf_set` branch).

    A total of m is added along the set's decoder rows, split in proportion to each feature's
    shortfall from m (`shortfall`), and the result is rescaled to the norm x had:

        v = relu(m - relu(pre)),  x' = x + m * (v / sum(v)) @ W_dec[S],  x' *= |x| / |x'|

    so a set of |S| features gets the same total push as one feature. Deviation: where no feature
    of the set falls short (sum(v) = 0) the reference divides 0 by 0 and writes NaN; here the
    position is returned unchanged. x: [..., d]; pre_acts: [..., S]; dec_rows: [S, d] (raw, as the
    reference uses them); magnitude m in activation units. Returns [..., d].
    """
    v = shortfall(pre_acts.to(x.dtype), magnitude)
    total = v.sum(dim=-1, keepdim=True)
    share = torch.where(total > 0, v / total.clamp_min(EPS), torch.zeros_like(v))
    edited = rescale_to_norm(x + magnitude * (share @ dec_rows.to(x.dtype)), x)
    return torch.where(total > 0, edited, x)


def rescale_to_norm(v: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """v [..., d] rescaled to the per-position norm of ref [..., d]; a zero v stays zero."""
    vn = v.norm(dim=-1, keepdim=True)
    return torch.where(vn > EPS, v * (ref.norm(dim=-1, keepdim=True) / vn.clamp_min(EPS)), v)


def chunk_gate(trigger_pre_acts: torch.Tensor, cond_val: float) -> bool:
    """Calibration's gate as released (autoencoder.py, `TopKSAE.edit_generate`, the `cond_set`
    branch): over the whole chunk a forward call sees, h = relu(pre-activations of the trigger
    group); the edit applies iff some h > 0 and the mean of the positive h is >= cond_val.

    trigger_pre_acts: [..., R] for every position of the chunk. Returns a Python bool.
    """
    h = trigger_pre_acts.clamp_min(0.0)
    positive = h[h > 0]
    return bool(positive.numel()) and float(positive.mean()) >= cond_val


def calibrate_edit(
    x: torch.Tensor,
    trigger_pre_acts: torch.Tensor,
    pre_acts: torch.Tensor,
    dec_rows: torch.Tensor,
    magnitude: float,
    cond_val: float,
) -> torch.Tensor:
    """Calibration as released: the amplify edit on the whole chunk when `chunk_gate` opens, else x
    exactly. x: [..., d] one chunk; trigger_pre_acts: [..., R]; the rest as in `amplify_edit`."""
    if not chunk_gate(trigger_pre_acts, cond_val):
        return x
    return amplify_edit(x, pre_acts, dec_rows, magnitude)


# -- token confidence ---------------------------------------------------------------------------
def token_confidence(logits: torch.Tensor, k: int = 20) -> torch.Tensor:
    """Token confidence C_k(p) = -(1/k) * sum of the log-probabilities of the k most likely next tokens.

    The definition of DeepConf (Fu et al., arXiv 2508.15260), whose released code computes it as
    `-np.mean` of the top log-probs (facebookresearch/deepconf, helper.py, `compute_confidence`)
    over vLLM's `logprobs=20` (deepconf-offline.py), hence k = 20. With k > 1 a peaked
    distribution (one sure token, a long tail) has a HIGH C_k: the tail's log-probs are very
    negative. With k = 1 it would be the surprisal of the top token, which runs the other way.

    logits: [..., V] (any float dtype; computed in float32). Returns [...].
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -logp.topk(k, dim=-1).values.mean(dim=-1)


def delta_token_confidence(logits_int: torch.Tensor, logits_base: torch.Tensor, k: int = 20) -> torch.Tensor:
    """dTC = C_k(p_int) - C_k(p_base) (Wang et al., arXiv 2510.03659): positive when the intervention
    makes the next-token distribution more peaked. logits_*: [..., V] -> [...]."""
    return token_confidence(logits_int, k) - token_confidence(logits_base, k)


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """exp(mean negative log-likelihood) of targets [N] under logits [N, V] (row i predicts targets[i])."""
    if targets.numel() == 0:
        return float("nan")
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="mean")
    return float(torch.exp(nll))


# -- output effects ---------------------------------------------------------------------------------
def logprob_shift(base: torch.Tensor, steered: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
    """[len(ids)] mean over prompts of log p_steered - log p_base for each token id.

    base, steered: [P, V] next-token log-probabilities of the same P prompts (nats)."""
    if not len(ids):
        return torch.zeros(0)
    idx = torch.as_tensor(list(ids), dtype=torch.long)
    return (steered[:, idx] - base[:, idx]).mean(dim=0)


def rise_over_controls(shifts: Sequence[float], control_shifts: Sequence[float | None]) -> float | None:
    """Mean target shift minus mean control shift, over the targets that have controls (nats); None when
    none has."""
    pairs = [(s, c) for s, c in zip(shifts, control_shifts) if c is not None]
    if not pairs:
        return None
    return sum(s for s, _ in pairs) / len(pairs) - sum(c for _, c in pairs) / len(pairs)
