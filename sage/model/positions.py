"""Per-token position rules on plain lists (no torch), shared by every layer above the model.

The first `ENGINE.skip_positions` positions of every context are the attention sink
(BOS): they carry huge, meaningless activations, so nothing reads a feature's peak
there. This is the one place that looks for the peak after them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.model import engine_config


def skip_positions() -> int:
    """How many leading (sink) positions every per-token reading ignores (`ENGINE.skip_positions`)."""
    # read at call time, so that a test can swap `engine_config.ENGINE`
    return engine_config.ENGINE.skip_positions


def peak_position(acts: Sequence[float], skip: int | None = None) -> int:
    """Index into `acts` (one activation per token, [T]) of the largest value after the first
    `skip` positions (default `skip_positions()`); the earliest on ties, and 0 when no
    position follows the skipped ones."""
    skip = skip_positions() if skip is None else skip
    return max(range(skip, len(acts)), key=acts.__getitem__) if len(acts) > skip else 0
