"""The subject of study: a HF causal LM, an SAE loaded by sae-lens, and the hook between them."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from sage import config
from sage.errors import ConfigError, SetupError
from sage.io import cache_key
from sage.model.device import resolve_device
from sage.model.engine_config import ENGINE
from sage.model.hooks import HookSite, resolve_hook
from sage.model.token_strings import TokenStrings
from sage.model.topk_encode import product_dtype

log = logging.getLogger(__name__)

_CALIBRATION = (
    "The committee met on Tuesday to discuss the new budget. Several members argued that the plan "
    "would raise costs for families, while others said it was the only way to keep the schools open. "
    "After a long debate, they agreed to vote again next week."
)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class SaeSpec:
    """How to load an SAE. kind: "disk" (a folder), "pretrained" (sae-lens release + id), "hf" (a HF repo)."""

    kind: str
    location: str
    sae_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.location}:{self.sae_id}" if self.sae_id else self.location


def parse_sae_spec(spec: str) -> SaeSpec:
    """Parse `--sae`: `default`, a local folder, `RELEASE:SAE_ID` (sae-lens pretrained), or
    `hf:REPO[/SUBDIR]`."""
    if spec == config.DEFAULT:
        return SaeSpec("disk", str(config.DEFAULT_SAE_DIR))
    if spec.startswith("hf:"):
        return SaeSpec("hf", spec[3:])
    if Path(spec).expanduser().exists():
        return SaeSpec("disk", str(Path(spec).expanduser().resolve()))
    if ":" in spec:
        release, sae_id = spec.split(":", 1)
        return SaeSpec("pretrained", release, sae_id)
    raise ConfigError(
        f"cannot read --sae {spec!r}: not a folder, and not RELEASE:SAE_ID or hf:REPO. "
        "Examples: default, ./my_sae, gpt2-small-res-jb:blocks.8.hook_resid_pre, hf:user/repo/subdir"
    )


def load_sae(spec: SaeSpec, device: str = "cpu"):
    """Load an SAE with sae-lens. Returns a `sae_lens.SAE` in float32 on `device`."""
    with warnings.catch_warnings():
        # sae-lens advises TransformerLens users how to load the model; SAGE loads it itself.
        warnings.filterwarnings("ignore", message=r"(?s).*non-empty model_from_pretrained_kwargs")
        return _load_sae(spec, device)


def _load_sae(spec: SaeSpec, device: str):
    from sae_lens import SAE

    if spec.kind == "disk":
        path = Path(spec.location)
        if not (path / "cfg.json").exists():
            hint = (
                " (the shipped default SAE is missing: reinstall SAGE or run `sage train-sae`)"
                if path == config.DEFAULT_SAE_DIR
                else ""
            )
            raise ConfigError(f"{path} is not an SAE folder in sae-lens format (no cfg.json){hint}")
        return SAE.load_from_disk(path, device=device, dtype="float32")
    if spec.kind == "pretrained":
        try:
            return SAE.from_pretrained(spec.location, spec.sae_id, device=device, dtype="float32")
        except ValueError as exc:
            raise ConfigError(f"sae-lens cannot load {spec.label}: {exc}") from exc
    if spec.kind == "hf":
        from huggingface_hub import snapshot_download

        repo_id = "/".join(spec.location.split("/")[:2])
        subdir = "/".join(spec.location.split("/")[2:])
        try:
            local = snapshot_download(repo_id, allow_patterns=[f"{subdir}/*"] if subdir else None)
        except Exception as exc:  # network errors come in many types
            raise SetupError(f"could not download SAE repo {repo_id}: {exc}") from exc
        return _load_sae(SaeSpec("disk", str(Path(local) / subdir)), device)
    raise ConfigError(f"unknown SAE spec kind {spec.kind!r}")


def resolve_model_path(model: str) -> str:
    """`default` -> the embedded model folder (set up on first use); anything else goes to transformers."""
    if model == config.DEFAULT:
        from sage.model.embedded import setup_embedded_model

        return str(setup_embedded_model())
    return model


def sink_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token placed at position 0 of every sequence.

    Position 0 of a causal LM acts as an attention sink with a huge residual norm
    (~100x elsewhere in SmolLM2), whatever token sits there. SAGE therefore puts a
    fixed document-start token there and never counts position 0: every real
    token then sits at position >= 1, where activations are comparable. The token
    is `<|endoftext|>` when the vocabulary has one (SmolLM2, GPT-2: their document
    separator), else the tokenizer's BOS, else its EOS.
    """
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return vocab["<|endoftext|>"]
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise ConfigError("tokenizer has no <|endoftext|>, BOS or EOS token to put at position 0")


class Subject:
    """A model + SAE + hook site, ready to produce activations.

    Attributes: model (HF causal LM, eval mode), tokenizer, sae (sae-lens SAE,
    float32), site (HookSite), model_id, sae_label, dtype.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        sae,
        *,
        model_id: str,
        sae_label: str,
        device: str = "cpu",
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.sae = sae.eval()
        self.model_id = model_id
        self.sae_label = sae_label
        self.device = device
        meta = sae.cfg.metadata
        self.site: HookSite = resolve_hook(model, meta.hook_name, meta.get("hf_hook_name"))
        width = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
        if sae.cfg.d_in != width:
            raise ConfigError(
                f"SAE/model mismatch: the SAE reads vectors of width {sae.cfg.d_in} "
                f"at {self.site.hook_name}, "
                f"but {model_id} has width {width} there. Pick the SAE trained on this model."
            )
        trained_on = meta.get("model_name")
        if trained_on and not _same_model(trained_on, model_id):
            warnings.warn(
                f"SAE metadata says it was trained on {trained_on!r}, but the model is {model_id!r}",
                stacklevel=2,
            )
        self.sink_id = sink_token_id(tokenizer)
        #: ids -> display strings (`tokenizer.decode([id])`), each decoded once and cached
        self.token_strings = TokenStrings(tokenizer)
        self._massive_norm: float | None = None

    @property
    def massive_norm(self) -> float:
        """Hook-point norm above which a token counts as a massive activation (sink-like):
        `ENGINE.max_norm_ratio` x the median norm over a fixed calibration text (computed once)."""
        if self._massive_norm is None:
            from sage.model.capture import HookCapture

            ids = self.tokenizer(_CALIBRATION, add_special_tokens=False, return_tensors="pt")["input_ids"]
            ids = torch.cat([torch.tensor([[self.sink_id]]), ids], dim=1)
            h = HookCapture(self.model, self.site)(ids)[0, ENGINE.skip_positions :].float()
            self._massive_norm = float(h.norm(dim=-1).median()) * ENGINE.max_norm_ratio
        return self._massive_norm

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def check_feature(self, index: int) -> int:
        """Return `index` if it is a valid feature, else raise ConfigError naming the valid range."""
        if not isinstance(index, int) or not 0 <= index < self.d_sae:
            raise ConfigError(f"feature {index} is out of range: this SAE has features 0-{self.d_sae - 1}")
        return index

    def fingerprint(self) -> str:
        """Stable id of (model weights location, SAE weights, hook): keys caches."""
        weights = sorted(self.sae.state_dict().items())
        return cache_key(
            self.model_id,
            self.site.hook_name,
            str(self.dtype),
            *(part for name, p in weights for part in (name, p.detach().float().cpu().contiguous().numpy())),
        )

    def info(self) -> dict:
        cfg = self.sae.cfg
        return {
            "model": self.model_id,
            "model_type": self.model.config.model_type,
            "dtype": str(self.dtype).replace("torch.", ""),
            # what the engine's encoder product runs in (EngineConfig.bf16_encoder)
            "encoder_dtype": str(product_dtype(self.sae, self.dtype, ENGINE.bf16_encoder)).replace(
                "torch.", ""
            ),
            "sae": self.sae_label,
            "architecture": cfg.architecture(),
            "hook_name": self.site.hook_name,
            "hf_module": self.site.module_name,
            "hook_read": self.site.read,
            "layer": self.site.layer,
            "d_in": int(cfg.d_in),
            "d_sae": self.d_sae,
            "sink_token": self.tokenizer.convert_ids_to_tokens([self.sink_id])[0],
        }


def _same_model(a: str, b: str) -> bool:
    norm = lambda s: Path(s.rstrip("/")).name.lower().replace("_", "-")  # noqa: E731
    return norm(a) == norm(b) or norm(a) in norm(b) or norm(b) in norm(a)


def quiet_transformers() -> None:
    """No per-tensor "Loading weights" bars on the terminal unless --verbose."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_subject(
    model: str = config.DEFAULT,
    sae: str = config.DEFAULT,
    *,
    dtype: str | None = None,
    device: str | None = None,
) -> Subject:
    """Load a model + SAE pair.

    model: `default`, a HF model id, or a local folder.
    sae: see `parse_sae_spec`.
    dtype: model weights dtype (`bfloat16` default: ~3x faster on CPUs with bf16
      matrix units, cosine 0.9999 to fp32 at the hook); the SAE always runs in fp32.
    device: auto (None: cuda when present), cpu, cuda, cuda:N or mps (`sage.model.device`).
    """
    device = resolve_device(device)
    dtype = dtype or os.environ.get("SAGE_DTYPE", "bfloat16")
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}")
    spec = parse_sae_spec(sae)
    sae_obj = load_sae(spec, device)  # cheap; fail before loading the model
    path = resolve_model_path(model)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[dtype]).to(device)
    except OSError as exc:
        raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
    model_id = config.EMBEDDED_MODEL_NAME if model == config.DEFAULT else model
    sae_label = "default" if sae == config.DEFAULT else spec.label
    return Subject(lm, tok, sae_obj, model_id=model_id, sae_label=sae_label, device=device)
