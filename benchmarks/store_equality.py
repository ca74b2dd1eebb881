"""Mine the default corpus into a fresh folder with today's code and compare it with an existing store
of the same subject and corpus (mined by an earlier version): same top-k values and contexts, same
counts, sums and maxima, within bf16 tolerance. Prints the time the full mining took.

    PYTHONPATH=. python benchmarks/store_equality.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def compare(old: dict, new: dict) -> dict:
    """Agreement of two saved states (`state.safetensors` tensors)."""
    live = old["top_vals"] > 0
    same_live = bool(torch.equal(live, new["top_vals"] > 0))
    dv = (old["top_vals"][live] - new["top_vals"][live]).abs()
    ids_equal = (old["top_ids"][live] == new["top_ids"][live]).float().mean()
    # contexts kept regardless of slot order (ties and bf16 reorderings swap neighbours)
    rows = torch.nonzero(live, as_tuple=True)[0].tolist()
    kept_old = set(zip(rows, old["top_ids"][live].tolist()))
    kept_new = set(zip(rows, new["top_ids"][live].tolist()))
    return {
        "live_slots": int(live.sum()),
        "same_live_slots": same_live,
        "top_vals_max_abs_diff": round(float(dv.max()), 5) if len(dv) else 0.0,
        "top_ids_same_slot": round(float(ids_equal), 5),
        "top_contexts_same_set": round(len(kept_old & kept_new) / max(len(kept_old), 1), 5),
        "fire_count_equal": bool(torch.equal(old["fire_count"], new["fire_count"])),
        "fire_count_max_abs_diff": float((old["fire_count"] - new["fire_count"]).abs().max()),
        "act_sum_max_rel_diff": float(
            ((old["act_sum"] - new["act_sum"]).abs() / old["act_sum"].abs().clamp_min(1e-9)).max()
        ),
        "max_act_max_abs_diff": round(float((old["max_act"] - new["max_act"]).abs().max()), 5),
    }


def main(argv=None) -> int:
    from sage.data.corpus import load_corpus
    from sage.model.subject import load_subject
    from sage.store.activation_store import ActivationStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="where to mine (default: a temporary folder)")
    args = ap.parse_args(argv)
    subject, corpus = load_subject(), load_corpus("default")
    existing = ActivationStore(subject, corpus)
    if not existing.status()["complete"]:
        raise SystemExit(f"no complete store at {existing.dir} to compare with: run `sage mine` first")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = ActivationStore(subject, corpus, root=args.out or Path(tmp))
        fresh.clear()
        start = time.perf_counter()
        fresh.mine()
        seconds = time.perf_counter() - start
        res = {"tokens": fresh.meta()["tokens"], "mining_s": round(seconds, 1)}
        res["tokens_per_s"] = round(res["tokens"] / seconds, 1)
        res.update(
            compare(
                load_file(str(existing.dir / "state.safetensors")),
                load_file(str(fresh.dir / "state.safetensors")),
            )
        )
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
