"""Train an SAE on the embedded model's activations with sae-lens's own trainer.

Two resumable phases under one work folder:

1. **cache**: run the training corpus through the model up to the hook (bf16,
   early exit) and write activations in shards (`acts/shard_NNNNN.safetensors`,
   bf16, position 0 excluded). A finished shard is never recomputed.
2. **train**: `sae_lens.SAETrainer` reads shuffled batches from the shards and
   checkpoints regularly (weights + optimizer + scaler); a re-run continues from
   the last checkpoint at the same sample.

The result is saved in sae-lens's disk format (`cfg.json`, `sae_weights.safetensors`,
`sparsity.safetensors`) with `metadata.hook_name` and `hf_hook_name` set.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from sae_lens import SAETrainer
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from sage import config
from sage.data.corpus import Corpus, load_corpus
from sage.data.sources import training_corpus
from sage.errors import ConfigError, require_choice, require_ints, require_range
from sage.io import atomic_path
from sage.model.capture import HookCapture
from sage.model.device import resolve_device
from sage.model.engine_config import ENGINE
from sage.model.hooks import resolve_hook
from sage.model.subject import _DTYPES, resolve_model_path, sink_token_id


@dataclass(frozen=True)
class TrainSaeConfig:
    """Everything that determines a trained SAE (saved beside it as `train_config.json`)."""

    #: the subject model (HF id or folder; `default` = the embedded SmolLM2-135M-Instruct)
    model: str = config.DEFAULT
    #: training text: `default` (the training split of the default corpus), .txt / .jsonl files or
    #: folders (comma-separated), or hf:DATASET[:SPLIT] (`sage.data.corpus.load_corpus`)
    corpus: str = config.DEFAULT
    #: decoder block whose activations are encoded
    layer: int = 12
    #: TransformerLens hook in that block: hook_resid_post, hook_resid_pre, hook_mlp_out or hook_attn_out
    hook: str = "hook_resid_post"
    #: `topk` or `jumprelu`
    architecture: str = "topk"
    #: SAE width (features)
    d_sae: int = 8192
    #: active features per token (topk only)
    k: int = 64
    #: sparsity penalty (jumprelu only)
    l0_coefficient: float = 5.0
    #: tokens trained on (rounded up to whole batches)
    training_tokens: int = 10_000_000
    #: tokens per cached context, the sink included
    context_len: int = 128
    #: contexts per cached activation shard
    contexts_per_shard: int = 2048
    #: tokens per optimiser step
    batch_size_tokens: int = 4096
    #: Adam learning rate
    lr: float = 4e-4
    #: seed of the initialisation and the shard order
    seed: int = 0
    #: autocast dtype of the model while caching and of training
    dtype: str = "bfloat16"
    #: checkpoints written over the run (resume points)
    n_checkpoints: int = 10
    #: cached shards shuffled together, so a batch mixes sources
    mixing_shards: int = 4
    #: training drops tokens whose residual norm exceeds this multiple of the median (see keep_mask)
    max_norm_ratio: float = ENGINE.max_norm_ratio

    def __post_init__(self) -> None:
        require_ints(self, "d_sae", "k", "training_tokens", "contexts_per_shard", "batch_size_tokens")
        require_ints(self, "n_checkpoints", "mixing_shards")
        require_ints(self, "layer", "seed", minimum=0)
        require_ints(self, "context_len", minimum=ENGINE.skip_positions + 1)
        require_choice(self, "architecture", ("topk", "jumprelu"))
        require_range(self, "lr", 0, open_low=True)
        require_range(self, "l0_coefficient", 0)
        require_range(self, "max_norm_ratio", 1, open_low=True)

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.{self.hook}"

    @property
    def tokens_per_shard(self) -> int:
        return self.contexts_per_shard * (self.context_len - ENGINE.skip_positions)

    @property
    def n_shards(self) -> int:
        return math.ceil(self.training_tokens / self.tokens_per_shard)


def _load_model(cfg: TrainSaeConfig, device: str):

    path = resolve_model_path(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[cfg.dtype]).to(device).eval()
    return model, tok, sink_token_id(tok)


def _training_corpus(spec: str) -> Corpus:
    """The training text of `TrainSaeConfig.corpus` (a bad spec or missing file fails here, before any
    weights load)."""
    return training_corpus("train") if spec == config.DEFAULT else load_corpus(spec)


def _training_contexts(corpus: Corpus, tokenizer, sink_id: int, context_len: int) -> Iterator[list[int]]:
    """Contexts of `corpus`, repeated in further epochs only if it runs out."""
    epoch = 0
    while True:
        n = 0
        for ctx in corpus.contexts(tokenizer, sink_id, context_len):
            n += 1
            yield ctx
        if n == 0:
            raise ConfigError("the training corpus produced no contexts")
        epoch += 1
        print(
            f"[train-sae] training corpus exhausted after {n} contexts; starting epoch {epoch + 1}",
            file=sys.stderr,
        )


def cache_activations(cfg: TrainSaeConfig, work: Path, device: str | None = None) -> Path:
    """Phase 1. Returns the shard folder. Resumable: finished shards are skipped. Uses CUDA when present."""
    device = resolve_device(device)
    corpus = _training_corpus(cfg.corpus)
    acts_dir = work / "acts"
    acts_dir.mkdir(parents=True, exist_ok=True)
    done = {p.name for p in acts_dir.glob("shard_*.safetensors")}
    if len(done) >= cfg.n_shards:
        return acts_dir
    model, tok, sink_id = _load_model(cfg, device)
    site = resolve_hook(model, cfg.hook_name)
    capture = HookCapture(model, site)
    skip = ENGINE.skip_positions
    contexts = _training_contexts(corpus, tok, sink_id, cfg.context_len)
    bar = tqdm(
        total=cfg.n_shards * cfg.tokens_per_shard, unit="tok", unit_scale=True, desc="caching activations"
    )
    batch = 32
    for shard in range(cfg.n_shards):
        name = f"shard_{shard:05d}.safetensors"
        ctxs = [
            next(contexts) for _ in range(cfg.contexts_per_shard)
        ]  # always consumed: keeps shards aligned
        if name in done:
            bar.update(cfg.tokens_per_shard)
            continue
        parts, start = [], time.perf_counter()
        for i in range(0, len(ctxs), batch):
            ids = torch.tensor(ctxs[i : i + batch], dtype=torch.long, device=device)
            h = capture(ids)[:, skip:, :]
            parts.append(h.reshape(-1, h.shape[-1]).to(torch.bfloat16).cpu())
            bar.update(h.shape[0] * h.shape[1])
        with atomic_path(acts_dir / name) as tmp:  # a shard exists only once complete
            save_file({"acts": torch.cat(parts)}, str(tmp))
        bar.set_postfix(
            shard=f"{shard + 1}/{cfg.n_shards}",
            tok_s=f"{cfg.tokens_per_shard / (time.perf_counter() - start):.0f}",
        )
    bar.close()
    (work / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return acts_dir


def keep_mask(acts: torch.Tensor, max_norm_ratio: float | None) -> torch.Tensor:
    """[N] bool: rows whose norm is at most `max_norm_ratio` x the median row norm.

    Besides position 0, SmolLM2 puts massive activations (norm ~2e4 vs a median ~140) on
    about 0.1% of tokens, mostly the first token after the sink; left in, they dominate the
    MSE. The SAE is trained on the ordinary residual stream and evaluated both ways.
    """
    if max_norm_ratio is None:
        return torch.ones(len(acts), dtype=torch.bool)
    norms = acts.float().norm(dim=-1)
    return norms <= max_norm_ratio * norms.median()


class ShardBatches:
    """Shuffled activation batches from cached shards, deterministic given (seed, sample offset).

    Shards are visited in a seeded random order, `mixing_shards` at a time; the
    tokens of each group are permuted and cut into batches [batch, d_in] float32.
    """

    def __init__(
        self,
        acts_dir: Path,
        batch_size: int,
        seed: int,
        mixing_shards: int,
        start_sample: int = 0,
        max_norm_ratio: float | None = None,
    ):
        self.shards = sorted(acts_dir.glob("shard_*.safetensors"))
        if not self.shards:
            raise ConfigError(f"no activation shards in {acts_dir}")
        self.batch_size, self.seed, self.mixing = batch_size, seed, mixing_shards
        self.start_batch = start_sample // batch_size
        self.max_norm_ratio = max_norm_ratio

    def __iter__(self) -> Iterator[torch.Tensor]:
        n_batches_done = 0
        epoch = 0
        while True:
            order = torch.randperm(
                len(self.shards), generator=torch.Generator().manual_seed(self.seed + epoch)
            )
            for g in range(0, len(order), self.mixing):
                group = [self.shards[int(i)] for i in order[g : g + self.mixing]]
                # Each shard holds the same number of tokens, so batches-per-group is known without loading.
                n_tok = sum(1 for _ in group) * self._shard_len()
                n_b = n_tok // self.batch_size
                if n_batches_done + n_b <= self.start_batch:
                    n_batches_done += n_b
                    continue
                acts = torch.cat([load_file(str(p))["acts"] for p in group])
                kept = torch.nonzero(keep_mask(acts, self.max_norm_ratio)).flatten()
                perm = kept[
                    torch.randperm(
                        len(kept), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch * 100 + g)
                    )
                ]
                for b in range(n_b):
                    if n_batches_done >= self.start_batch:
                        # batches per group stay fixed (resume arithmetic); the few rows dropped as
                        # outliers are made up by wrapping around the permutation
                        idx = torch.arange(b * self.batch_size, (b + 1) * self.batch_size) % len(perm)
                        yield acts[perm[idx]].float()
                    n_batches_done += 1
            epoch += 1

    def _shard_len(self) -> int:
        if not hasattr(self, "_len"):
            with safe_open(str(self.shards[0]), "pt") as f:
                self._len = f.get_slice("acts").get_shape()[0]
        return self._len


class _LazyIterator:
    """Iterator built on first `next()`, so it can start at the sample a resumed trainer reached."""

    def __init__(self, factory):
        self._factory, self._it = factory, None

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if self._it is None:
            self._it = iter(self._factory())
        return next(self._it)


def _latest_checkpoint(folder: Path) -> Path | None:
    ckpts = [p for p in folder.glob("*") if (p / "cfg.json").exists() and p.name.isdigit()]
    return max(ckpts, key=lambda p: int(p.name)) if ckpts else None


def _check_run_settings(ckpt_dir: Path, cfg: TrainSaeConfig) -> None:
    """Refuse to resume checkpoints made with other settings.

    The optimizer and learning-rate schedule in a checkpoint belong to its run (e.g. a 4M-token run is
    already decaying its LR at 3.2M), so continuing it as a 10M-token run would silently train another SAE.
    """
    path = ckpt_dir / "run_settings.json"
    mine = asdict(cfg)
    if path.exists():
        theirs = json.loads(path.read_text())
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v and k != "n_checkpoints"}
        if diff:
            shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in sorted(diff.items()))
            raise ConfigError(
                f"the checkpoints in {ckpt_dir} belong to a run with other settings ({shown}); "
                "delete that folder to start afresh, or pass another --work"
            )
    else:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mine, indent=2))


def train_sae(cfg: TrainSaeConfig, work: Path, out_dir: Path, device: str | None = None) -> Path:
    """Phase 2: train with `sae_lens.SAETrainer` on the cached shards; resumes from the last checkpoint.

    Saves an inference SAE (fp16 weights) in sae-lens's disk format at `out_dir`.
    """

    device = resolve_device(device)
    acts_dir = work / "acts"
    shards = sorted(acts_dir.glob("shard_*.safetensors"))
    if not shards:
        raise ConfigError(f"no cached activations in {acts_dir}: run the cache phase first")
    distinct = len(shards) * cfg.tokens_per_shard
    steps = math.ceil(
        cfg.training_tokens / cfg.batch_size_tokens
    )  # whole batches, never fewer tokens than asked
    total = steps * cfg.batch_size_tokens
    if distinct < total:  # fewer distinct tokens cached than asked for: ShardBatches starts another epoch
        print(
            f"[train-sae] {distinct:,} distinct cached tokens for {total:,} training tokens "
            f"({total / distinct:.2f} epochs)",
            file=sys.stderr,
        )
    torch.manual_seed(cfg.seed)
    meta = SAEMetadata(
        hook_name=cfg.hook_name,
        hf_hook_name=f"model.layers.{cfg.layer}",
        model_name=config.EMBEDDED_MODEL_NAME if cfg.model == config.DEFAULT else cfg.model,
        model_class_name="AutoModelForCausalLM",
        context_size=cfg.context_len,
        prepend_bos=False,
        dataset_path="sage training corpus (see docs/default-sae.md)",
        model_from_pretrained_kwargs={"dtype": cfg.dtype},
        sage_sink_position_excluded=True,
        sage_max_norm_ratio=cfg.max_norm_ratio,
        sage_training_tokens=total,
        sage_cached_tokens=distinct,
        sage_seed=cfg.seed,
    )
    common = dict(
        d_in=_d_in(acts_dir),
        d_sae=cfg.d_sae,
        normalize_activations="expected_average_only_in",
        device=device,
        metadata=meta,
    )
    if cfg.architecture == "topk":
        sae_cfg, sae_cls = TopKTrainingSAEConfig(k=cfg.k, **common), TopKTrainingSAE
    elif cfg.architecture == "jumprelu":
        sae_cfg, sae_cls = (
            JumpReLUTrainingSAEConfig(l0_coefficient=cfg.l0_coefficient, **common),
            JumpReLUTrainingSAE,
        )
    else:
        raise ConfigError(f"architecture must be topk or jumprelu, not {cfg.architecture!r}")
    ckpt_dir = work / "checkpoints"
    trainer_cfg = SAETrainerConfig(
        total_training_samples=total,
        train_batch_size_samples=cfg.batch_size_tokens,
        lr=cfg.lr,
        lr_end=cfg.lr / 10,
        lr_warm_up_steps=min(100, steps // 10),
        lr_decay_steps=steps // 5,
        device=device,
        autocast=device
        == "cpu",  # bf16 matmuls: ~2x faster on this CPU kind; weights and optimizer stay fp32
        dead_feature_window=200,
        feature_sampling_window=500,
        n_checkpoints=cfg.n_checkpoints,
        checkpoint_path=str(ckpt_dir),
        n_batches_for_norm_estimate=50,
    )
    _check_run_settings(ckpt_dir, cfg)
    last = _latest_checkpoint(ckpt_dir)
    sae = sae_cls.load_from_disk(last, device=device) if last else sae_cls(sae_cfg)
    holder: dict = {}
    provider = _LazyIterator(
        lambda: ShardBatches(
            acts_dir,
            cfg.batch_size_tokens,
            cfg.seed,
            cfg.mixing_shards,
            start_sample=holder["trainer"].n_training_samples,
            max_norm_ratio=cfg.max_norm_ratio,
        )
    )
    trainer = SAETrainer(trainer_cfg, sae, provider)
    holder["trainer"] = trainer
    if last:
        trainer.load_trainer_state(last)
        print(f"[train-sae] resuming from {last} at {trainer.n_training_samples:,} samples", file=sys.stderr)
    sae = trainer.fit()
    out_dir.mkdir(parents=True, exist_ok=True)
    sae.save_inference_model(str(out_dir))
    _to_half(out_dir)
    save_file({"sparsity": trainer.log_feature_sparsity.float().cpu()}, str(out_dir / "sparsity.safetensors"))
    (out_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return out_dir


def _d_in(acts_dir: Path) -> int:

    with safe_open(str(next(acts_dir.glob("shard_*.safetensors"))), "pt") as f:
        return f.get_slice("acts").get_shape()[1]


def _to_half(folder: Path) -> None:
    """Store weights in float16 (the package ships them so); SAGE loads them back as float32."""
    weights = folder / "sae_weights.safetensors"
    save_file({k: v.half() for k, v in load_file(str(weights)).items()}, str(weights))
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["dtype"] = "float16"
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=2))
