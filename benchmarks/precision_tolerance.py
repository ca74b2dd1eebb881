"""How far bf16 activations (eager forward, compiled blocks, a bf16 SAE encoder) are from float32 ones,
on corpus contexts.

The questions behind `sage mine --compile` and `EngineConfig.bf16_encoder`: are a compiled forward and a
bf16 encoder product "within bf16 tolerance"? The reference is the embedded model in float32, eager,
with the float32 encoder. Against it, each bf16 variant is scored on the same
contexts: the share of firing (token, feature) pairs that differ (one fires, the other does not), of
(context, feature) pairs, the largest difference of a per-context maximum, the relative error of the
activations, and sink decisions that differ (massive-activation tokens). No timing.

    PYTHONPATH=. python benchmarks/precision_tolerance.py [--contexts 64]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def all_acts(
    subject, ids: torch.Tensor, bf16_encoder: bool = False, batch: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dense activations [N, T, d_sae], sink mask [N, T]) from the engine's sparse path."""
    from sage.model.engine import ActivationEngine

    engine = ActivationEngine(subject, bf16_encoder=bf16_encoder)
    parts = [engine.sparse_acts(ids[i : i + batch]) for i in range(0, len(ids), batch)]
    return torch.cat([a.to_dense() for a, _ in parts]), torch.cat([s for _, s in parts])


def differences(ref, ref_sinks, other, other_sinks) -> dict:
    keep = ~(ref_sinks | other_sinks)
    r, o = ref * keep[..., None], other * keep[..., None]
    fr, fo = r > 0, o > 0
    mr, mo = r.amax(1), o.amax(1)
    return {
        "token_pairs_differ": round(((fr ^ fo).sum() / fr.sum()).item(), 4),
        "context_pairs_differ": round((((mr > 0) ^ (mo > 0)).sum() / (mr > 0).sum()).item(), 4),
        "max_context_max_diff": round((mr - mo).abs().max().item(), 3),
        "relative_error": round(((r - o).norm() / r.norm()).item(), 4),
        "sinks_differ": int((ref_sinks ^ other_sinks).sum()),
    }


def main(argv=None) -> int:
    from sage.data.corpus import load_corpus
    from sage.model.compiled import compiled_forward
    from sage.model.engine_config import ENGINE
    from sage.model.subject import load_subject

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contexts", type=int, default=64)
    args = ap.parse_args(argv)

    fp32 = load_subject(dtype="float32")
    tok = fp32.tokenizer
    contexts = itertools.islice(
        load_corpus("default").contexts(tok, fp32.sink_id, ENGINE.context_len), args.contexts
    )
    ids = torch.tensor(list(contexts))
    ref = all_acts(fp32, ids)
    del fp32
    bf16 = load_subject(dtype="bfloat16")
    eager32, eager16 = all_acts(bf16, ids), all_acts(bf16, ids, True)
    rows = {
        "bf16 eager (sdpa attention), float32 encoder": differences(*ref, *eager32),
        "bf16 eager, bf16 encoder (the engine's default)": differences(*ref, *eager16),
    }
    with compiled_forward(bf16.model, bf16.site, warmup=0):
        rows["bf16 compiled blocks, float32 encoder"] = differences(*ref, *all_acts(bf16, ids))
        rows["bf16 compiled blocks, bf16 encoder"] = differences(*ref, *all_acts(bf16, ids, True))
    print(f"{len(ids)} contexts x {ids.shape[1]} tokens, each against float32 eager:")
    for name, d in rows.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in d.items()))
    # the encoder's own share: the same bf16 hook activations, encoded both ways
    d = differences(*eager32, *eager16)
    print(
        "bf16 encoder against float32 encoder, same bf16 forward: "
        + ", ".join(f"{k} {v}" for k, v in d.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
