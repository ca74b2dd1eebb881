"""`sage train-sae`: train an SAE on the embedded model with sae-lens's trainer (resumable)."""

from __future__ import annotations

from pathlib import Path

from sage import config
from sage.cli.common import add_corpus_arg, add_device_arg


def add_parser(sub) -> None:
    from sage.sae.train import TrainSaeConfig

    d = TrainSaeConfig()
    p = sub.add_parser(
        "train-sae", help="cache activations and train an SAE with sae-lens (checkpoints, resumes)"
    )
    p.add_argument("--model", default=d.model)
    add_corpus_arg(p, help_default="the training split of the default corpus")
    add_device_arg(p)
    p.add_argument("--layer", type=int, default=d.layer)
    p.add_argument(
        "--hook",
        default=d.hook,
        choices=["hook_resid_pre", "hook_resid_post", "hook_mlp_out", "hook_attn_out"],
    )
    p.add_argument("--architecture", default=d.architecture, choices=["topk", "jumprelu"])
    p.add_argument("--width", type=int, default=d.d_sae, help="number of features (d_sae)")
    p.add_argument("--k", type=int, default=d.k, help="TopK: active features per token")
    p.add_argument(
        "--l0-coefficient", type=float, default=d.l0_coefficient, help="JumpReLU sparsity coefficient"
    )
    p.add_argument("--tokens", type=int, default=d.training_tokens)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--work", type=Path, default=None, help="work folder for cached activations and checkpoints"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (sae-lens disk format)")
    p.add_argument(
        "--phase",
        choices=["all", "cache", "train", "eval"],
        default="all",
        help="all = cache + train + eval; eval = held-out metrics of --out only",
    )
    p.add_argument("--eval-tokens", type=int, default=204_800, help="held-out tokens for the evaluation")
    p.set_defaults(func=run)


def work_name(cfg) -> str:
    """The default work folder's name: cached activations differ per model, hook and corpus."""
    from sage.io import cache_key

    name = f"L{cfg.layer}-{cfg.hook}-{cfg.model.replace('/', '_')}"
    return name if cfg.corpus == config.DEFAULT else f"{name}-corpus-{cache_key(cfg.corpus)}"


def run(args) -> int:
    from sage.model.device import resolve_device
    from sage.sae.train import TrainSaeConfig, cache_activations, train_sae

    cfg = TrainSaeConfig(
        model=args.model,
        corpus=args.corpus,
        layer=args.layer,
        hook=args.hook,
        architecture=args.architecture,
        d_sae=args.width,
        k=args.k,
        l0_coefficient=args.l0_coefficient,
        training_tokens=args.tokens,
        lr=args.lr,
        seed=args.seed,
    )
    work = args.work or config.train_sae_dir() / work_name(cfg)
    device = resolve_device(args.device)
    if args.phase in ("all", "cache"):
        cache_activations(cfg, work, device)
    if args.phase in ("all", "train"):
        out = train_sae(cfg, work, args.out, device)
        print(f"saved SAE to {out}")
    if args.phase in ("all", "eval"):
        import json

        from sage.model.subject import load_subject
        from sage.sae.evaluate import evaluate_sae, heldout_contexts

        subject = load_subject(cfg.model, str(args.out), dtype=cfg.dtype, device=device)
        metrics = evaluate_sae(subject, heldout_contexts(subject, args.eval_tokens))
        (args.out / "eval.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
    return 0
