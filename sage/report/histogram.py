"""The activation histogram as data (pure): counts per equal-width bin and the bar geometry that
the SVG template draws. Bar heights are on a log scale (the counts span orders of magnitude),
and every bar carries its range and count as text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def counts(values: Sequence[float], n_bins: int, high: float) -> list[int]:
    """How many `values` fall in each of `n_bins` equal-width bins over (0, high]; values <= 0 are not
    counted, values above `high` go to the last bin."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    out = [0] * n_bins
    if high <= 0:
        return out
    for v in values:
        if v > 0:
            out[min(n_bins - 1, max(0, math.ceil(v / high * n_bins) - 1))] += 1
    return out


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    lo: float
    hi: float
    count: int


@dataclass(frozen=True)
class Histogram:
    bars: list[Bar]
    width: int
    height: int
    total: int
    high: float


def layout(
    values: Sequence[float], n_bins: int, high: float, width: int = 360, height: int = 120
) -> Histogram:
    """Bars of the histogram of `values` in a `width` x `height` box (SVG user units); a bar's height
    is log(1 + count) / log(1 + largest count) of the box, so a single context still shows."""
    c = counts(values, n_bins, high)
    top = max(c, default=0)
    step_w, step_v = width / n_bins, (high / n_bins if high > 0 else 0.0)
    bars = []
    for i, k in enumerate(c):
        h = height * math.log1p(k) / math.log1p(top) if top else 0.0
        bars.append(Bar(i * step_w, height - h, step_w * 0.9, h, step_v * i, step_v * (i + 1), k))
    return Histogram(bars, width, height, sum(c), high)
