"""What a feature page shows from the activation store and the MI vocabulary: statistics, the
per-context maxima behind the histogram, and top / quantile contexts with their stored per-token
activations (top contexts as mined; quantile contexts as `ActivationStore.quantile_samples` returns
them, computed by the model + SAE, the same call the agent's seed node makes)."""

from __future__ import annotations

from dataclasses import dataclass

from sage.model.positions import skip_positions
from sage.report.settings import REPORT, ReportConfig


@dataclass(frozen=True)
class StoreFeature:
    max_activation: float
    #: share of corpus tokens where the feature fires
    frequency: float
    #: mean activation over the tokens where it fires
    mean_activation: float
    #: max activation of every corpus context where it fires (the histogram's data)
    context_maxima: list[float]
    #: [{"tokens", "acts", "sinks", "label"}], strongest first
    top: list[dict]
    #: the same, lowest bin first; "label" names the bin
    quantiles: list[dict]
    #: corpus contexts mined
    n_contexts: int


def _ctx(c, label: str) -> dict:
    return {"tokens": c.tokens, "acts": c.acts, "sinks": list(range(skip_positions())), "label": label}


def store_feature(store, feature: int, cfg: ReportConfig = REPORT) -> StoreFeature:
    """Read one feature from a mined `ActivationStore`."""
    stats = store.feature_stats(feature)
    top = store.top(feature, cfg.top_contexts)
    quant = store.quantile_samples(feature, cfg.n_quantiles, cfg.per_quantile, exclude_top=len(top))
    _, maxima = store.firing_contexts(feature)
    return StoreFeature(
        max_activation=stats.max_activation,
        frequency=stats.frequency,
        mean_activation=stats.mean_activation,
        context_maxima=[float(v) for v in maxima.tolist()],
        top=[_ctx(c, f"top {i} · context {c.context_id}") for i, c in enumerate(top, 1)],
        quantiles=[
            _ctx(c, f"quantile bin {c.quantile + 1}/{cfg.n_quantiles} · context {c.context_id}")
            for c in quant
        ],
        n_contexts=store.n_contexts,
    )


def vocab_words(subject, feature: int, cfg: ReportConfig = REPORT) -> dict[str, list[list]]:
    """{"mi": [[word, score]...], "logit_lens": [[token, score]...]} from the (cached) vocabulary tables."""
    from sage.vocab.lookup import vocab_tables

    tables = vocab_tables(subject, progress=False)
    return {
        "mi": [[w, float(s)] for w, s in tables.mi(feature, cfg.vocab_top)],
        "logit_lens": [[w, float(s)] for w, s in tables.logit_lens(feature, cfg.vocab_top)],
    }
