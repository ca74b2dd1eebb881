"""Evaluate an SAE on held-out text: FVE, L0, dead features, downstream CE loss.

Hand-written rather than sae-lens's `run_evals`, which needs a HookedTransformer /
HookedProxyLM and an sae-lens ActivationsStore; here we reuse the subject's own hook
mapping and early-exit engine, and splice with one forward hook. Position 0 (the sink,
excluded from training) is left untouched in spliced and ablated runs and excluded
from every statistic.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sage.data.sources import training_corpus
from sage.model.engine import ActivationEngine
from sage.model.engine_config import ENGINE
from sage.model.hooks import first_tensor, replace_first_tensor
from sage.sae.evaluate_math import ReconstructionTally, ce_loss_score, evenly_spaced
from sage.sae.train import keep_mask


def _site_module(subject):
    if subject.site.read != "output":
        raise NotImplementedError(
            "CE splicing is implemented for output hook sites (resid_post, mlp_out, attn_out)"
        )
    return dict(subject.model.named_modules())[subject.site.module_name]


@contextlib.contextmanager
def _at_site(subject, hook):
    """Run `hook(module, inputs, output)` on the hook site's module during forwards; always removed."""
    handle = _site_module(subject).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _replace_at_hook(subject, fn):
    """Replace the hook site's activation (positions >= 1) by fn(h) during forwards."""
    skip = ENGINE.skip_positions

    def hook(_m, _inp, out):
        h = first_tensor(out)
        new = h.clone()
        new[:, skip:] = fn(h[:, skip:])
        return replace_first_tensor(out, new)

    return _at_site(subject, hook)


def _record_at_hook(subject, into: list):
    """Append the hook site's activation [B, T, d_in] to `into` during forwards."""
    return _at_site(subject, lambda _m, _i, out: into.append(first_tensor(out).detach()))


def _ce(model, ids: torch.Tensor) -> torch.Tensor:
    """Sum of next-token CE over predictions made from positions >= 1."""
    logits = model(input_ids=ids, use_cache=False).logits[:, ENGINE.skip_positions : -1].float()
    target = ids[:, ENGINE.skip_positions + 1 :]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")


@torch.no_grad()
def evaluate_sae(
    subject,
    contexts: list[list[int]],
    batch_size: int = 16,
    with_ce: bool = True,
    max_norm_ratio: float = ENGINE.max_norm_ratio,
) -> dict:
    """Metrics over `contexts` (token-id lists of equal length, sink first).

    FVE and L0 are reported twice: over every non-sink token, and over the ordinary tokens only
    (norm <= `max_norm_ratio` x median: the distribution the SAE was trained on). With `with_ce`, the
    hook activations come from the clean full forward itself, so each batch costs three forwards
    (clean, spliced, zero-ablated) and no separate pass to the hook.
    """

    sae = subject.sae
    tally = ReconstructionTally(subject.d_sae)
    ordinary = ReconstructionTally(subject.d_sae)
    ce = {"clean": 0.0, "spliced": 0.0, "zero": 0.0}
    n_pred = 0
    skip = ENGINE.skip_positions
    recon = lambda h: sae.decode(sae.encode(h.float())).to(h.dtype)  # noqa: E731
    zero = lambda h: torch.zeros_like(h)  # noqa: E731
    engine = None if with_ce else ActivationEngine(subject)
    for i in tqdm(range(0, len(contexts), batch_size), desc="evaluating SAE", unit="batch"):
        ids = torch.tensor(contexts[i : i + batch_size], dtype=torch.long, device=subject.device)
        if with_ce:
            seen: list[torch.Tensor] = []
            with _record_at_hook(subject, seen):
                ce["clean"] += float(_ce(subject.model, ids))
            hidden = seen[0]
            with _replace_at_hook(subject, recon):
                ce["spliced"] += float(_ce(subject.model, ids))
            with _replace_at_hook(subject, zero):
                ce["zero"] += float(_ce(subject.model, ids))
            n_pred += ids.shape[0] * (ids.shape[1] - skip - 1)
        else:
            hidden = engine.hidden(ids)
        h = hidden[:, skip:].reshape(-1, sae.cfg.d_in).float()
        codes = sae.encode(h)
        x_hat = sae.decode(codes)
        tally.add(h, x_hat, codes)
        keep = keep_mask(h, max_norm_ratio)
        ordinary.add(h[keep], x_hat[keep], codes[keep])
    out = {
        "tokens": tally.n,
        "fve": round(tally.fve(), 4),
        "l0": round(tally.l0(), 2),
        "dead_fraction": round(tally.dead_fraction(), 4),
        "ordinary_tokens": ordinary.n,
        "fve_ordinary": round(ordinary.fve(), 4),
        "l0_ordinary": round(ordinary.l0(), 2),
    }
    if with_ce:
        clean, spliced, zero_ = (ce[k] / n_pred for k in ("clean", "spliced", "zero"))
        out.update(
            {
                "ce_clean": round(clean, 4),
                "ce_spliced": round(spliced, 4),
                "ce_zero_ablation": round(zero_, 4),
                "ce_loss_score": round(ce_loss_score(clean, spliced, zero_), 4),
            }
        )
    return out


def heldout_contexts(subject, n_tokens: int, context_len: int = 128) -> list[list[int]]:
    """About `n_tokens` of contexts from the held-out split of the SAE training corpus (never trained on).

    The contexts are spread evenly over the whole held-out stream, so every training source is
    represented in proportion rather than only the first ones.
    """

    stream = list(training_corpus("heldout").contexts(subject.tokenizer, subject.sink_id, context_len))
    n = math.ceil(n_tokens / (context_len - ENGINE.skip_positions))
    return [stream[i] for i in evenly_spaced(len(stream), n)]
