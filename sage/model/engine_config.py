"""Defaults of the activation engine and store: batch size, context length, what is kept per
feature, and the attention-sink rules. Light (no torch), so that pure modules can read it."""

from __future__ import annotations

from dataclasses import dataclass

from sage.errors import require_ints, require_range


@dataclass(frozen=True)
class EngineConfig:
    """Defaults of the activation engine and the activation store."""

    #: texts per forward pass on a CPU
    batch_size: int = 32
    #: texts per forward pass on a GPU, where a larger batch fills the device (mining: 128 x 64 tokens)
    accelerator_batch_size: int = 128
    #: tokens per mined corpus context (the sink token included)
    context_len: int = 64
    #: top-activating contexts kept per feature
    top_k: int = 32
    #: activation-quantile bins sampled per feature (between 0 and the feature's max)
    n_quantiles: int = 10
    #: contexts sampled per quantile bin
    per_quantile: int = 4
    #: random contexts kept per feature where it does not fire
    n_random_negatives: int = 16
    #: BOS / attention-sink handling: the first `skip_positions` positions of every
    #: sequence are excluded from top activations, quantiles, frequency and training.
    skip_positions: int = 1
    #: Massive activations elsewhere: a token whose hook-point norm exceeds this multiple of the
    #: model's typical norm is treated like the sink (features reported as 0, never counted) and
    #: left out of SAE training. SmolLM2 has them on ~0.1% of tokens, mostly position 1.
    max_norm_ratio: float = 10.0
    #: a TopK SAE's encoder product runs in bf16 when the model does: its input carries bf16 precision
    #: already, and it moves results about as far from float32 as the bf16 forward does
    #: (docs/performance.md); False keeps the float32 product
    bf16_encoder: bool = True

    def __post_init__(self) -> None:
        require_ints(self, "batch_size", "accelerator_batch_size", "context_len", "top_k", "n_quantiles")
        require_ints(self, "per_quantile", "n_random_negatives")
        require_ints(self, "skip_positions", minimum=0)
        require_range(self, "skip_positions", 0, self.context_len - 1)
        require_range(self, "max_norm_ratio", 1, open_low=True)

    def batch_size_for(self, device: str) -> int:
        """Texts per forward pass on `device` (a torch device string)."""
        return self.batch_size if device.split(":")[0] == "cpu" else self.accelerator_batch_size


ENGINE = EngineConfig()
