"""Tiny, self-contained fixtures: a random-init Llama-family model with its own BPE
tokenizer, and SAEs saved with sae-lens (they live in `sage.testing`, shared with the benchmarks)."""

from __future__ import annotations

# re-exported for the tests
import os

from sage.testing import SINK, TEXTS, build_model, build_sae, build_tokenizer  # noqa: F401

#: where the unit suite runs its models: `SAGE_TEST_DEVICE=cuda pytest` runs it on a GPU
TEST_DEVICE = os.environ.get("SAGE_TEST_DEVICE", "cpu")
