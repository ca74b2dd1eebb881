"""Tokens/s of `ActivationStore.mine` against its limit, the early-exit forward + SAE encode on the same
contexts and device, measured in one run.

Limit: for batches of the mined contexts (the first `--limit-tokens` of them), the eager forward up
to the hook and the engine's sparse encode, nothing copied off the device and no bookkeeping
(`benchmarks.timing.time_forward_encode`): what the device computes for mining. Mining:
`ActivationStore.mine` from an empty store in a temporary folder (so the shared store under
$SAGE_HOME is never touched), with its saves, its progress bar off and everything it keeps, twice:
as `sage mine` runs it (key `ratio`) and with `--compile` (its blocks compiled after the first
batches, `sage.model.compiled`; key `compiled_ratio`). CUDA is synchronised before every clock read. On a
shared CPU, wall time depends on what else runs; `cpu_ratio` compares tokens per CPU second of this
process instead (meaningful for a CPU run only).

    PYTHONPATH=. python benchmarks/mining.py                          # embedded SmolLM2 + default SAE
    PYTHONPATH=. python benchmarks/mining.py --random-init gemma-2-2b --device cuda --tokens 400000
    PYTHONPATH=. python benchmarks/mining.py --json                   # one object; key `ratio`
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.subjects import add_subject_args, subject_from  # noqa: E402
from benchmarks.timing import time_forward_encode, timed  # noqa: E402


def time_limit(engine, contexts: list[list[int]], batch_size: int) -> tuple[float, float]:
    """(wall, CPU) seconds of early-exit forward + encode over `contexts` (one warm-up batch first)."""
    batches = [torch.tensor(contexts[i : i + batch_size]) for i in range(0, len(contexts), batch_size)]
    # whole batches only, as mining runs them
    return time_forward_encode(engine, [(b, None) for b in batches if len(b) == batch_size])


def main(argv=None) -> int:
    from sage import config
    from sage.data.corpus import load_corpus
    from sage.model.engine_config import ENGINE
    from sage.store.activation_store import ActivationStore, StoreConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_subject_args(ap)
    ap.add_argument("--corpus", default=config.DEFAULT)
    ap.add_argument("--tokens", type=int, default=129_024, help="non-sink tokens to mine")
    ap.add_argument("--limit-tokens", type=int, default=64_512, help="tokens the limit is measured on")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    subject = subject_from(args)
    corpus = load_corpus(args.corpus)
    cfg = StoreConfig(max_tokens=args.tokens)
    body = cfg.context_len - ENGINE.skip_positions  # mined tokens per context
    with tempfile.TemporaryDirectory() as tmp:
        store = ActivationStore(subject, corpus, cfg, root=Path(tmp))
        bs = store.engine.batch_size
        # contexts the limit runs on: whole batches of the store's engine, at least one
        n_limit = max(-(-min(args.tokens, args.limit_tokens) // body), bs)
        contexts = list(
            itertools.islice(corpus.contexts(subject.tokenizer, subject.sink_id, cfg.context_len), n_limit)
        )
        t_limit, c_limit = time_limit(store.engine, contexts, bs)
        t_mine, c_mine = timed(lambda: store.mine(args.tokens, progress=False), subject.device)
        mined = store.meta()["tokens"]
        comp = ActivationStore(subject, corpus, cfg, root=Path(tmp) / "compiled")
        t_comp, c_comp = timed(lambda: comp.mine(args.tokens, progress=False, compile=True), subject.device)
    n_tok = (n_limit // bs) * bs * body  # time_limit runs whole batches only
    limit, limit_cpu = n_tok / t_limit, n_tok / c_limit  # tokens per second, per CPU second
    res = {
        "model": subject.model_id,
        "sae": subject.sae_label,
        "d_sae": subject.d_sae,
        "device": subject.device,
        "dtype": str(subject.dtype).replace("torch.", ""),
        "batch_size": store.engine.batch_size,
        "threads": torch.get_num_threads(),
        "tokens": mined,
        "limit_tokens_per_s": round(limit, 1),
        "mining_tokens_per_s": round(mined / t_mine, 1),
        "ratio": round((mined / t_mine) / limit, 3),
        "cpu_ratio": round((mined / c_mine) / limit_cpu, 3),
        "compiled_mining_tokens_per_s": round(mined / t_comp, 1),
        "compiled_ratio": round((mined / t_comp) / limit, 3),
        "compiled_cpu_ratio": round((mined / c_comp) / limit_cpu, 3),
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(
        f"{res['model']} + {res['sae']} ({res['d_sae']} features) on {res['device']}, {res['dtype']}, "
        f"batch {res['batch_size']}, {res['threads']} threads, {mined} tokens"
    )
    print(f"  limit (early-exit forward + encode): {res['limit_tokens_per_s']:>10.1f} tokens/s")
    print(f"  sage mine (ActivationStore.mine):    {res['mining_tokens_per_s']:>10.1f} tokens/s")
    print(f"  sage mine --compile:                 {res['compiled_mining_tokens_per_s']:>10.1f} tokens/s")
    print(f"  ratio (mining / limit):              {res['ratio']:.2f} ({res['compiled_ratio']:.2f} compiled)")
    print(
        f"  same, per CPU second of this process: {res['cpu_ratio']:.2f} "
        f"({res['compiled_cpu_ratio']:.2f} compiled)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
