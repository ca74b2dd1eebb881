"""Tiny, self-contained fixtures: a random-init Llama-family model with its own BPE
tokenizer, and SAEs saved with sae-lens (they live in `sage.testing`, shared with the benchmarks)."""

from __future__ import annotations

# re-exported for the tests
from sage.testing import SINK, TEXTS, build_model, build_sae, build_tokenizer  # noqa: F401
