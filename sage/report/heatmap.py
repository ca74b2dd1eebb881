"""Token heat-maps as data (pure): activation -> colour bucket, the legend, one cell per token.

Values are never changed here: a cell carries the activation it was given (from the activation
store or a probe's record), and only its colour bucket is derived. Colour is never the only cue:
every cell has its value in text (tooltip and aria-label), the max token and sink tokens are
marked with symbols and outlines as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def bucket(value: float, max_act: float, n_buckets: int) -> int:
    """Colour bucket of one activation: 0 for value <= 0 (not active), else 1..n_buckets-1 by equal
    shares of (0, max_act]; values above max_act (a probe stronger than the corpus max) share the top."""
    if value <= 0 or max_act <= 0:
        return 0
    return min(n_buckets - 1, max(1, math.ceil(value / max_act * (n_buckets - 1))))


def legend(max_act: float, n_buckets: int, decimals: int = 4) -> list[dict]:
    """One entry per bucket: {"bucket", "label"} with the activation range it covers, in raw units."""
    out = [{"bucket": 0, "label": "0 (not active)"}]
    step = max_act / (n_buckets - 1) if max_act > 0 else 0.0
    for b in range(1, n_buckets):
        lo, hi = step * (b - 1), step * b
        top = "+" if b == n_buckets - 1 else ""
        low = f"{lo:.{decimals}f}" if b > 1 else "> 0"
        out.append({"bucket": b, "label": f"{low}–{hi:.{decimals}f}{top}"})
    return out


def display_token(token: str) -> str:
    """The token as shown in a cell: newlines and tabs as visible symbols (spaces are kept)."""
    return token.replace("\n", "⏎").replace("\t", "⇥") or "∅"


@dataclass(frozen=True)
class Cell:
    """One token of a heat-map."""

    text: str
    value: float
    bucket: int
    is_max: bool
    is_sink: bool
    shown: str  # the value as text, `decimals` places

    def describe(self) -> str:
        """The accessible description (aria-label / tooltip) of the cell."""
        tags = (" (sink: ignored)" if self.is_sink else "") + (" (max)" if self.is_max else "")
        return f"{self.text!r}: {self.shown}{tags}"


def cells(
    tokens: Sequence[str],
    acts: Sequence[float],
    max_act: float,
    sinks: Sequence[int] = (),
    n_buckets: int = 6,
    decimals: int = 4,
) -> list[Cell]:
    """Heat-map cells of one context.

    tokens: [T] decoded strings; acts: [T] the feature's raw activations, aligned with tokens;
    max_act: the feature's corpus maximum (the scale's top); sinks: positions that are attention sinks
    (shown as such, never the max). The max cell is the earliest largest positive non-sink value.
    """
    if len(tokens) != len(acts):
        raise ValueError(f"{len(tokens)} tokens but {len(acts)} activations")
    sink_set = set(sinks)
    body = [i for i in range(len(acts)) if i not in sink_set]
    peak = max(body, key=lambda i: (acts[i], -i), default=None)
    if peak is not None and acts[peak] <= 0:
        peak = None
    return [
        Cell(
            text=display_token(t),
            value=float(a),
            bucket=0 if i in sink_set else bucket(a, max_act, n_buckets),
            is_max=i == peak,
            is_sink=i in sink_set,
            shown=f"{a:.{decimals}f}",
        )
        for i, (t, a) in enumerate(zip(tokens, acts))
    ]
