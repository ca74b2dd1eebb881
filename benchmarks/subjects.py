"""The subject a benchmark measures: the embedded default, a local model + SAE, or a random-init model
in a real model's shape (`--random-init smollm2-135m|gemma-2-2b|llama-3.2-1b`, shapes in
`benchmarks/shapes/*.json`; throughput does not depend on the weights, so no download is needed).

A random-init subject uses the embedded SmolLM2 tokenizer: its ids (< 49152) are valid in every shape's
vocabulary, and the texts stay the same across shapes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

SHAPES_DIR = Path(__file__).resolve().parent / "shapes"
RANDOM_INIT_SHAPES = sorted(p.stem for p in SHAPES_DIR.glob("*.json"))
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_subject_args(ap: argparse.ArgumentParser) -> None:
    from sage import config

    ap.add_argument("--model", default=config.DEFAULT, help="model (default: embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--sae", default=config.DEFAULT, help="SAE (default: the shipped default SAE)")
    ap.add_argument(
        "--random-init", choices=RANDOM_INIT_SHAPES, help="a random-init model + TopK SAE in this shape"
    )
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:N")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="model dtype (default: SAGE's, bfloat16)")


def random_init_subject(shape: str, device: str, dtype: str = "bfloat16", seed: int = 0):
    """A Subject with random weights in `shape`'s real dimensions: model, hook at the shape's layer,
    and a TopK SAE of the shape's width (sae-lens `TopKSAE`)."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from sage import config
    from sage.model.subject import Subject, resolve_model_path

    spec = json.loads((SHAPES_DIR / f"{shape}.json").read_text())
    m, s = dict(spec["model"]), spec["sae"]
    torch.manual_seed(seed)
    model_cfg = AutoConfig.for_model(m.pop("model_type"), **m)
    # initialised on the device: Gemma-2-2B's random init takes ~25 s on 2 CPU cores
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_cfg, dtype=DTYPES[dtype])
    layer, d_in = s["layer"], m["hidden_size"]
    meta = SAEMetadata(
        hook_name=f"blocks.{layer}.hook_resid_post", hf_hook_name=f"model.layers.{layer}", model_name=shape
    )
    sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=s["d_sae"], k=s["k"], metadata=meta))
    with torch.no_grad():
        sae.W_enc.normal_(0, d_in**-0.5)
        sae.W_dec.copy_(sae.W_enc.T)
    tok = AutoTokenizer.from_pretrained(resolve_model_path(config.DEFAULT))
    return Subject(
        model, tok, sae.to(device), model_id=shape, sae_label=f"random topk {s['d_sae']}", device=device
    )


def subject_from(args):
    """The subject of the parsed `add_subject_args` arguments, on its device."""
    from sage.model.device import resolve_device
    from sage.model.subject import load_subject, quiet_transformers

    quiet_transformers()
    device = resolve_device(args.device)
    if args.random_init:
        return random_init_subject(args.random_init, device, args.dtype or "bfloat16")
    return load_subject(args.model, args.sae, dtype=args.dtype, device=device)
