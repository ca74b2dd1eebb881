"""Scaling out on Ray, measured on this machine in one run: features/s of batch explanation and tokens/s
of mining with 1 and 2 Ray workers, as ratios against one process doing the same work.

Batch: the same `--features` live features of the embedded SmolLM2 + default SAE, explained by
`sage.runs.explain_batch` (what `sage batch` runs) in one process, then with `RayExplainers` (what
`sage batch --ray --workers N` runs). Reads the mined default store in $SAGE_HOME; never mines it.
Mining: the first `--mine-tokens` tokens of the default corpus mined by `ActivationStore.mine` (what
`sage mine` runs) and by `RayMiners.mine` (what `sage mine --ray` runs), into stores under a temporary
$SAGE_HOME (the model and corpus are linked from the real one; its stores are never touched), with
`--segment-contexts` contexts per segment so that the budget splits into shards.

The cores are split evenly: one process uses torch's default threads (every core), and each of N Ray
workers reserves cores / N CPUs (Ray sets its torch threads to that). Rates count the work only (after
the workers are up); the workers' start-up (process, imports, model load) is printed apart. Each Ray
result is checked against the one-process result (same explanations, same store). On a machine shared
with other jobs the figures move with their load; the load average is printed with them.

    PYTHONPATH=. python benchmarks/scale.py
    PYTHONPATH=. python benchmarks/scale.py --features 6 --mine-tokens 64512 --workers 1,2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def live_features(store, n: int, seed: int) -> list[int]:
    """`n` random features that fire in the store (they have contexts to explain)."""
    live = [f for f in range(store.subject.d_sae) if store.feature_stats(f).frequency > 0]
    return sorted(random.Random(seed).sample(live, n))


def same_lines(a: Path, b: Path) -> bool:
    """Same explanations (labels, description, hypotheses, evidence; not timings) for every feature."""

    def read(p):
        recs = [json.loads(x) for x in p.read_text().splitlines()]
        return {r["feature"]["index"]: {k: v for k, v in r.items() if k != "timings"} for r in recs}

    return read(a) == read(b)


def bench_batch(args, cores: int, tmp: Path) -> list[dict]:
    from sage import config
    from sage.distributed.batch import RayExplainers
    from sage.distributed.cluster import ClusterConfig
    from sage.runs import Session, explain_batch

    session = Session.open(explainer=args.explainer, mine=False)
    # the first explanation in a process loads what the rest reuse (vocabulary tables, caches): every
    # run explains untimed warm-up features first, one per worker, then the timed ones
    picked = live_features(session.store, args.features + max(args.workers), args.seed)
    features, warm = picked[: args.features], picked[args.features :]
    kwargs = {"max_rounds": args.max_rounds, "progress": False}
    rows = []
    explain_batch(warm[:1], tmp / "warm.jsonl", session=session, **kwargs)
    t = time.perf_counter()
    explain_batch(features, tmp / "one.jsonl", session=session, **kwargs)
    rows.append({"what": "batch", "workers": 0, "startup_s": 0.0, "seconds": time.perf_counter() - t})
    opener = partial(
        Session.open, config.DEFAULT, config.DEFAULT, config.DEFAULT, args.explainer, None, None, mine=False
    )
    for n in args.workers:
        t = time.perf_counter()
        with RayExplainers(opener, ClusterConfig(workers=n, cpus_per_worker=cores / n)) as pool:
            up = time.perf_counter() - t
            explain_batch(warm[:n], tmp / f"warm{n}.jsonl", session=session, executor=pool, **kwargs)
            out = tmp / f"ray{n}.jsonl"
            t = time.perf_counter()
            summary = explain_batch(features, out, session=session, executor=pool, **kwargs)
            secs = time.perf_counter() - t
            threads = [w["threads"] for w in pool.workers]
        ok = summary["failed"] == 0 and same_lines(out, tmp / "one.jsonl")
        rows.append(
            {"what": "batch", "workers": n, "startup_s": up, "seconds": secs, "same": ok, "threads": threads}
        )
    for r in rows:
        r["rate"] = len(features) / r["seconds"]
        r["unit"] = "features/s"
        r["features"] = features
    return rows


def same_store(a, b) -> bool:
    """The stores hold the same statistics and segments (float64 sums to 1e-12 relative)."""
    import torch
    from safetensors.torch import load_file

    sa, sb = (load_file(str(s.dir / "state.safetensors")) for s in (a, b))
    if not all(torch.equal(sa[k], sb[k]) for k in sa if k != "act_sum"):
        return False
    if not torch.allclose(sa["act_sum"], sb["act_sum"], rtol=1e-12, atol=0):
        return False
    ma, mb = a.meta(), b.meta()
    segs = [
        torch.equal(load_file(str(a.dir / n))[k], load_file(str(b.dir / n))[k])
        for n in (f"segment_{i:05d}.safetensors" for i in range(ma["segments"]))
        for k in ("token_ids", "ctx", "feat", "max")
    ]
    return all(segs) and (ma["contexts"], ma["tokens"]) == (mb["contexts"], mb["tokens"])


def bench_mining(args, cores: int, tmp: Path) -> list[dict]:
    from sage import config

    real = config.sage_home()
    home = tmp / "sage_home"  # the model and corpus linked, the stores new: the real stores stay as they are
    home.mkdir()
    for name in ("models", "corpus", "wheels"):
        if (real / name).exists():
            (home / name).symlink_to(real / name)
    os.environ["SAGE_HOME"] = str(home)  # before any worker starts: workers get the driver's SAGE_*

    from sage.data.corpus import load_corpus
    from sage.distributed.cluster import ClusterConfig
    from sage.distributed.mining import RayMiners, open_subject
    from sage.model.subject import load_subject
    from sage.store.activation_store import ActivationStore, StoreConfig

    subject = load_subject(device="cpu")
    corpus = load_corpus(config.DEFAULT)
    cfg = StoreConfig(segment_contexts=args.segment_contexts)
    one = ActivationStore(subject, corpus, cfg, root=home / "one")
    t = time.perf_counter()
    one.mine(args.mine_tokens, progress=False)
    rows = [{"what": "mining", "workers": 0, "startup_s": 0.0, "seconds": time.perf_counter() - t}]
    tokens = one.meta()["tokens"]
    for n in args.workers:
        t = time.perf_counter()
        cluster = ClusterConfig(workers=n, cpus_per_worker=cores / n)
        worker_subject = partial(open_subject, config.DEFAULT, config.DEFAULT, None)
        with RayMiners(worker_subject, load_corpus, cluster) as m:
            up = time.perf_counter() - t
            store = ActivationStore(subject, corpus, cfg, root=home / f"ray{n}")
            t = time.perf_counter()
            m.mine(store, args.mine_tokens, progress=False)
            secs = time.perf_counter() - t
            threads = [w["threads"] for w in m.workers]
        rows.append(
            {
                "what": "mining",
                "workers": n,
                "startup_s": up,
                "seconds": secs,
                "same": same_store(store, one),
                "threads": threads,
            }
        )
    for r in rows:
        r["rate"] = tokens / r["seconds"]
        r["unit"] = "tokens/s"
        r["tokens"] = tokens
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=int, default=6, help="features to explain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rounds", type=int, default=1)
    ap.add_argument("--explainer", default="offline")
    ap.add_argument("--mine-tokens", type=int, default=4 * 256 * 63, help="tokens to mine (4 segments)")
    ap.add_argument("--segment-contexts", type=int, default=256, help="contexts per store segment")
    ap.add_argument("--workers", default="1,2", help="Ray pool sizes to measure")
    ap.add_argument("--skip", choices=["batch", "mining"], default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]

    from sage.distributed.cluster import require_ray
    from sage.model.subject import quiet_transformers

    ray = require_ray()
    quiet_transformers()
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sage-scale-") as tmp:
        if args.skip != "batch":
            (Path(tmp) / "batch").mkdir()
            rows += bench_batch(args, cores, Path(tmp) / "batch")
        if args.skip != "mining":
            (Path(tmp) / "mining").mkdir()
            rows += bench_mining(args, cores, Path(tmp) / "mining")
    ray.shutdown()
    for r in rows:
        base = next(b for b in rows if b["what"] == r["what"] and b["workers"] == 0)
        r["ratio"] = r["rate"] / base["rate"]
    result = {"cores": cores, "load_before": load_before, "load_after": os.getloadavg(), "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{cores} cores; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'':8} {'workers':>8} {'start-up s':>11} {'work s':>8} {'rate':>20} {'ratio':>7}  same result")
    for r in rows:
        who = "1 process" if r["workers"] == 0 else f"Ray x{r['workers']}"
        same = "" if r["workers"] == 0 else ("yes" if r["same"] else "NO")
        rate = f"{r['rate']:.4g} {r['unit']}"
        print(
            f"{r['what']:8} {who:>8} {r['startup_s']:>11.1f} {r['seconds']:>8.1f} {rate:>20} "
            f"{r['ratio']:>6.2f}x  {same}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
