"""Tokens/s of SAGE's activation engine vs. the baseline a user would write today, same texts, one run.

Baseline (what sae-lens offers for a HF model): `HookedProxyLM` (what `sae_lens.load_model(
"AutoModelForCausalLM", ...)` returns) around the same HF model, then per batch `run_with_cache(tokens,
names_filter=[hook], stop_at_layer=...)` (sae-lens stops the forward at the hook when given both) and
`SAE.encode` of the cached activations, under `torch.no_grad()`; the dense [B, T, d_sae] features end
on the host (`.cpu()`), as a user needs them. It runs three times: the model in the engine's dtype with
the float32 SAE the engine loads, the model and a copy of the SAE both in the engine's dtype (what
`SAE.from_pretrained(..., dtype=...)` gives; the engine's own encoder product runs in bf16 when its model
does, `EngineConfig.bf16_encoder`), and all in float32 (`from_pretrained`'s default). "Same dtype"
ratios are against the faster of the first two.
SAGE: `ActivationEngine(subject).run(texts)` (early exit at the hook, bf16 by default, right padding
with an attention mask, batches formed by length, all features kept sparse, tokens decoded to strings),
and the same with `bf16_encoder=False` (the SAE's encoder product in float32, as before it ran in bf16);
with `--compiled`, also with the decoder blocks compiled (`sage.model.compiled`, what `sage mine
--compile` runs; compiled once, in the first round's warm-up batch, for the first batch shape).

Limit: what the device computes for the engine's batches (the same token ids and padding), the early-exit
forward and the sparse encode and nothing else (`benchmarks.timing.time_forward_encode`); the engine's
tokens/s over it is `engine_fraction_of_limit`, the share of the device's work the engine turns into
results.

All get the same texts: `--n-texts` windows of `--max-length` tokens from the corpus, in batches
of `--batch-size`; each pipeline gets one warm-up batch first. The pipelines take turns for
`--rounds` rounds and each one's best round counts (noise on a shared machine only adds time).
tokens/s counts the texts' own tokens (the engine's extra sink token at position 0 is its own cost).
CUDA is synchronised before every clock read.

`--random-init smollm2-135m|gemma-2-2b|llama-3.2-1b` measures a random-init model + TopK SAE in that
model's real shape (`benchmarks/shapes/`; no download). `--device cuda` runs on a GPU.

The fraction of peak (CPU only): FLOPs of the engine's forward up to the hook (2 x in x out of every
linear layer that runs, measured with forward hooks; 4 x T x d_attn per token per attention layer for
scores and values, the usual model-FLOPs convention; 2 x d_in x d_sae for the SAE encoder), over
the engine's time, over this CPU's bf16 matmul peak measured in this same run (best of several
2048 x 2048 x 2048 bf16 matmuls with torch's current thread count).

    PYTHONPATH=. python benchmarks/activations.py                       # embedded SmolLM2 + default SAE
    PYTHONPATH=. python benchmarks/activations.py --random-init gemma-2-2b --device cuda --compiled
    PYTHONPATH=. python benchmarks/activations.py --model DIR --sae DIR --corpus FILE
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.subjects import add_subject_args, subject_from  # noqa: E402
from benchmarks.timing import time_forward_encode, timed  # noqa: E402


def bf16_peak_flops(n: int = 2048, reps: int = 8) -> float:
    """This CPU's bf16 matmul throughput in FLOP/s: best of `reps` n x n x n matmuls."""
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def corpus_texts(corpus_spec: str, tokenizer, n: int, length: int) -> list[str]:
    """`n` texts of `length` tokens: consecutive windows of the corpus's token stream, decoded."""
    from sage.data.corpus import load_corpus

    corpus = load_corpus(corpus_spec)
    windows = itertools.islice(corpus.contexts(tokenizer, tokenizer.eos_token_id or 0, length + 1), n)
    texts = [tokenizer.decode(w[1:]) for w in windows]
    if len(texts) < n:
        raise SystemExit(f"the corpus {corpus_spec!r} holds only {len(texts)} windows of {length} tokens")
    return texts


def linear_flops_per_token(subject, engine) -> float:
    """2 x in x out summed over the nn.Linear layers the engine's early-exit forward runs."""
    total, handles = [0.0], []
    for module in subject.model.modules():
        if isinstance(module, torch.nn.Linear):
            handles.append(
                module.register_forward_hook(
                    lambda m, _inputs, _output: total.__setitem__(
                        0, total[0] + 2 * m.in_features * m.out_features
                    )
                )
            )
    try:
        engine.hidden(torch.tensor([[subject.sink_id]]), None)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def engine_flops(subject, engine, lengths: list[int]) -> float:
    """FLOPs of the engine's forward (up to the hook, plus the SAE encoder) over sequences of `lengths`."""
    cfg = subject.model.config
    heads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    d_attn = heads * (getattr(cfg, "head_dim", None) or hidden // heads)
    attn_layers = subject.site.layer + (0 if subject.site.read == "input" else 1)
    per_token = linear_flops_per_token(subject, engine) + 2 * subject.sae.W_enc.shape[0] * subject.d_sae
    return sum(t * per_token + attn_layers * 4 * t * t * d_attn for t in lengths)


def baseline_hook(site) -> str:
    """The HF module whose output HookedProxyLM must cache (it hooks module outputs only)."""
    if site.read == "output":
        return site.module_name
    if site.layer == 0:
        raise SystemExit(
            f"the baseline cannot read the input of {site.module_name} (HookedProxyLM hooks outputs)"
        )
    prefix, _, index = site.module_name.rpartition(".")
    if not index.isdigit():
        raise SystemExit(f"no baseline mapping for reading the input of {site.module_name}")
    return f"{prefix}.{int(index) - 1}"  # a block's input is the previous block's output


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def time_engine(engine, texts: list[str], batch_size: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the engine over all texts."""
    engine.run(texts[:batch_size])  # warm-up
    return timed(lambda: [engine.run(batch) for batch in chunks(texts, batch_size)], engine.subject.device)


def time_limit(engine, texts: list[str], batch_size: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the early-exit forward + encode of the batches `time_engine` runs."""
    seqs = engine.tokenize(texts)
    parts = chunks(seqs, batch_size)  # as `time_engine` hands the texts to `run`
    return time_forward_encode(
        engine, [(ids, mask) for part in parts for _, ids, mask in engine.length_batches(part)]
    )


def time_baseline(
    hooked, sae, hook: str, stop_layer: int, texts: list[str], batch_size: int, device: str
) -> tuple[tuple[float, float], bool]:
    """(wall, CPU) seconds for all texts, and whether sae-lens really stopped the forward at the hook."""
    tok = hooked.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    def one(batch):
        enc = tok(batch, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits, cache = hooked.run_with_cache(
                enc["input_ids"].to(device), names_filter=[hook], stop_at_layer=stop_layer
            )
            sae.encode(cache[hook].to(sae.dtype)).cpu()
        return logits is None  # no logits: the forward ended at the hook

    stopped = one(texts[:batch_size])  # warm-up
    return timed(lambda: [one(batch) for batch in chunks(texts, batch_size)], device), stopped


def main(argv=None) -> int:
    from sage import config
    from sage.model.engine_config import ENGINE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_subject_args(ap)
    ap.add_argument(
        "--corpus", default=config.DEFAULT, help="where the texts come from (default: default corpus)"
    )
    ap.add_argument("--n-texts", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the engine's for the device")
    ap.add_argument("--max-length", type=int, default=128, help="tokens per text")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each pipeline's best counts")
    ap.add_argument(
        "--compiled",
        action="store_true",
        help="also time the engine with compiled blocks (sage.model.compiled)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from sae_lens.load_model import HookedProxyLM

    from sage.model.compiled import compiled_forward
    from sage.model.engine import ActivationEngine

    subject = subject_from(args)
    device = subject.device
    bs = args.batch_size or ENGINE.batch_size_for(device)
    engine = ActivationEngine(subject, batch_size=bs, max_length=args.max_length + 1)
    texts = corpus_texts(args.corpus, subject.tokenizer, args.n_texts, args.max_length)
    lengths = [len(ids) for ids in engine.tokenize(texts)]
    n_tokens = sum(n - 1 for n in lengths)  # the texts' own tokens, without the engine's sink

    cpu = device == "cpu"
    peak = bf16_peak_flops() if cpu else float("nan")
    flops = engine_flops(subject, engine, lengths)
    # the baselines wrap the same model object (one forward hook, an identity unless caching); the
    # all-float32 one converts it for its turn and back (bf16 -> float32 -> bf16 is exact)
    hook = baseline_hook(subject.site)
    hooked = HookedProxyLM(subject.model, subject.tokenizer, hook_names=[hook]).eval()
    stop = subject.site.layer + 1
    model_dtype = subject.dtype  # the fp32 baseline converts the model and back to this
    engine_dtype = str(model_dtype).replace("torch.", "")
    sae_same = copy.deepcopy(subject.sae).to(model_dtype)
    engine_f32 = ActivationEngine(subject, batch_size=bs, max_length=args.max_length + 1, bf16_encoder=False)
    runs: dict[str, list[tuple[float, float]]] = {
        "limit": [],
        "engine": [],
        "engine_float32_encoder": [],
        "engine_compiled": [],
        "mixed": [],
        "both": [],
        "fp32": [],
    }
    for _ in range(args.rounds):  # interleaved, so that a slow spell of a shared machine hits all
        runs["limit"].append(time_limit(engine, texts, bs))
        runs["engine"].append(time_engine(engine, texts, bs))
        runs["engine_float32_encoder"].append(time_engine(engine_f32, texts, bs))
        if args.compiled:  # the first round's warm-up batch compiles; later rounds reuse it
            with compiled_forward(subject.model, subject.site, warmup=0):
                runs["engine_compiled"].append(time_engine(engine, texts, bs))
        t, base_stopped = time_baseline(hooked, subject.sae, hook, stop, texts, bs, device)
        runs["mixed"].append(t)
        runs["both"].append(time_baseline(hooked, sae_same, hook, stop, texts, bs, device)[0])
        subject.model.float()
        runs["fp32"].append(time_baseline(hooked, subject.sae, hook, stop, texts, bs, device)[0])
        subject.model.to(model_dtype)
    # each pipeline's best round (least wall time), as timeit does: noise only ever adds time
    (t_limit, _), (t_engine, c_engine), (t_mixed, c_mixed), (t_both, c_both), (t_fp32, c_fp32) = (
        min(runs[name]) for name in ("limit", "engine", "mixed", "both", "fp32")
    )
    t_same, c_same = min((t_mixed, c_mixed), (t_both, c_both))
    if cpu:
        peak = max(peak, bf16_peak_flops())  # again after the runs: the better of the two

    res = {
        "model": subject.model_id,
        "sae": subject.sae_label,
        "d_sae": subject.d_sae,
        "hook": subject.site.hook_name,
        "hf_module": subject.site.module_name,
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "texts": len(texts),
        "tokens": n_tokens,
        "batch_size": bs,
        "threads": torch.get_num_threads(),
        "engine_dtype": engine_dtype,
        "baseline_stops_at_hook": base_stopped,
        "rounds": args.rounds,
        "tokens_per_s_each_round": {k: [round(n_tokens / w, 1) for w, _ in v] for k, v in runs.items()},
        "limit_tokens_per_s": round(n_tokens / t_limit, 1),
        "engine_tokens_per_s": round(n_tokens / t_engine, 1),
        "engine_fraction_of_limit": round(t_limit / t_engine, 3),
        "engine_float32_encoder_tokens_per_s": round(n_tokens / min(runs["engine_float32_encoder"])[0], 1),
        "engine_compiled_tokens_per_s": round(n_tokens / min(runs["engine_compiled"])[0], 1)
        if args.compiled
        else None,
        "baseline_same_dtype_float32_sae_tokens_per_s": round(n_tokens / t_mixed, 1),
        "baseline_same_dtype_same_dtype_sae_tokens_per_s": round(n_tokens / t_both, 1),
        "baseline_same_dtype_tokens_per_s": round(n_tokens / t_same, 1),
        "baseline_fp32_tokens_per_s": round(n_tokens / t_fp32, 1),
        "ratio_same_dtype": round(t_same / t_engine, 2),
        "ratio_same_dtype_float32_sae": round(t_mixed / t_engine, 2),
        "ratio_same_dtype_same_dtype_sae": round(t_both / t_engine, 2),
        "ratio_fp32": round(t_fp32 / t_engine, 2),
        "cpu_time_ratios": {  # the same ratios in CPU seconds of this process (a shared CPU)
            "same_dtype": round(c_same / c_engine, 2),
            "fp32": round(c_fp32 / c_engine, 2),
        },
        "engine_gflop": round(flops / 1e9, 2),
        "engine_tflop_per_s": round(flops / t_engine / 1e12, 4),
    }
    if cpu:
        res["bf16_peak_tflop_per_s"] = round(peak / 1e12, 3)
        res["fraction_of_bf16_peak"] = round(flops / t_engine / peak, 4)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(
        f"{res['model']} + {res['sae']} ({res['d_sae']} features) at {res['hook']} on {res['device_name']}; "
        f"{res['texts']} texts x {args.max_length} tokens = {n_tokens} tokens, batch {bs}, "
        f"{res['threads']} threads"
    )
    stops = "stops" if base_stopped else "does not stop"
    rows = [
        ("limit: early-exit forward + encode", res["limit_tokens_per_s"]),
        (f"SAGE engine ({engine_dtype})", res["engine_tokens_per_s"]),
        ("SAGE engine, float32 encoder product", res["engine_float32_encoder_tokens_per_s"]),
        *([("SAGE engine, compiled blocks", res["engine_compiled_tokens_per_s"])] if args.compiled else []),
        (
            f"sae-lens ({engine_dtype} model, float32 SAE)",
            res["baseline_same_dtype_float32_sae_tokens_per_s"],
        ),
        (f"sae-lens ({engine_dtype} model and SAE)", res["baseline_same_dtype_same_dtype_sae_tokens_per_s"]),
        ("sae-lens (float32)", res["baseline_fp32_tokens_per_s"]),
    ]
    for label, tok_s in rows:
        print(f"  {label + ':':<42}{tok_s:>10.1f} tokens/s")
    print(f"  (the sae-lens forward {stops} at the hook)")
    print(f"  engine / limit:                          {res['engine_fraction_of_limit']:.1%}")
    print(
        f"  ratio vs the faster same-dtype baseline: {res['ratio_same_dtype']:.2f}x "
        f"({res['ratio_same_dtype_float32_sae']:.2f}x vs float32 SAE, "
        f"{res['ratio_same_dtype_same_dtype_sae']:.2f}x vs {engine_dtype} SAE)"
    )
    print(f"  ratio vs the float32 baseline:           {res['ratio_fp32']:.2f}x")
    if cpu:
        r = res["cpu_time_ratios"]
        print(
            f"  in CPU seconds of this process: {r['same_dtype']:.2f}x same-dtype, {r['fp32']:.2f}x float32"
        )
        print(
            f"  engine: {res['engine_tflop_per_s']:.3f} TFLOP/s = {res['fraction_of_bf16_peak']:.1%} of this "
            f"CPU's bf16 matmul peak, {res['bf16_peak_tflop_per_s']:.2f} TFLOP/s (2048^3 bf16, this run)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
