"""Defaults of the HTML report, one place."""

from __future__ import annotations

from dataclasses import dataclass

from sage.errors import require_ints


@dataclass(frozen=True)
class ReportConfig:
    """What a report shows per feature, and how heat-maps and histograms are drawn."""

    #: top-activating corpus contexts shown per feature (the store keeps at most its own `top_k`)
    top_contexts: int = 10
    #: activation-quantile bins sampled for the quantile contexts
    n_quantiles: int = 5
    #: contexts shown per quantile bin
    per_quantile: int = 2
    #: colour buckets of the heat-map scale; bucket 0 is "not active" (activation <= 0)
    n_buckets: int = 6
    #: bars of the activation histogram (equal width from 0 to the feature's max)
    histogram_bins: int = 24
    #: MI-vocabulary words and logit-lens tokens listed per feature
    vocab_top: int = 12
    #: tokens either side of the peak in the index's example column
    example_radius: int = 4
    #: decimals of an activation shown in a tooltip (`sage top --json` rounds to 4)
    decimals: int = 4

    def __post_init__(self) -> None:
        require_ints(self, "top_contexts", "n_quantiles", "per_quantile", "histogram_bins", "vocab_top")
        require_ints(self, "example_radius", minimum=0)
        require_ints(self, "n_buckets", minimum=2)
        require_ints(self, "decimals", minimum=0)


REPORT = ReportConfig()
