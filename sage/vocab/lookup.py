"""MI vocabulary of a subject's features: the tables from memory, the disk cache, or computed.

The one entry point that may compute (`vocab_tables`); `sage.vocab.tables` stays light
(no torch) for the CLI's cached path, and `sage.vocab.compute` holds the heavy math.
"""

from __future__ import annotations

from sage import config
from sage.vocab import compute as vocab_compute
from sage.vocab.math import logit_lens_top
from sage.vocab.tables import VOCAB, VocabConfig, VocabTables

#: tables already loaded in this process, by cache key
_MEMO: dict[str, VocabTables] = {}


def clear_memo() -> None:
    """Forget the tables loaded in this process (the disk cache is kept)."""
    _MEMO.clear()


def vocab_tables(subject, settings: VocabConfig = VOCAB, progress: bool = True) -> VocabTables:
    """The tables of `subject`: from memory, from the disk cache, or computed (~20 s) and cached."""
    key = vocab_compute.cache_key(subject, settings)
    if key in _MEMO:
        return _MEMO[key]
    stem = config.vocab_dir() / key
    tables = VocabTables.load(stem, settings)
    if tables is None:
        tables = vocab_compute.compute_tables(subject, settings, progress)
        tables.save(stem)
    tables.meta["cache_key"] = key
    _MEMO[key] = tables
    return tables


def mi_words(subject, feature: int, top: int = 20, settings: VocabConfig = VOCAB) -> list[tuple[str, float]]:
    """The `top` vocabulary words that explain `feature` by the MI objective (`settings.variant`), with
    scores, best first.

    A subject without local weights (a Neuronpedia SAE, `sage.neuronpedia.source`) has no decoder
    directions or unembedding to rank: it has no MI words ([])."""
    subject.check_feature(feature)
    if getattr(subject, "sae", None) is None:
        return []
    return vocab_tables(subject, settings).mi(feature, top)


def logit_lens_tokens(subject, feature: int, top: int = 20) -> list[tuple[str, float]]:
    """The `top` logit-lens tokens of `feature` (decoded, leading space kept) with direction . unembedding."""
    subject.check_feature(feature)
    if getattr(subject, "sae", None) is None:
        return []
    return vocab_tables(subject).logit_lens(feature, top)


def logit_lens_bottom(subject, feature: int, top: int = 20) -> list[tuple[str, float]]:
    """The `top` tokens whose unembedding rows point most against `feature`'s direction (what it
    suppresses, by the logit lens), with direction . unembedding (negative), most negative first.
    Computed for this feature alone (the cached tables keep only the top side); [] without local
    weights."""
    subject.check_feature(feature)
    if getattr(subject, "sae", None) is None:
        return []
    direction = vocab_compute.feature_directions(subject)[feature]
    idx, val = logit_lens_top(
        -direction[None],
        vocab_compute.unembedding(subject.model),
        top,
        chunk=1,
        exclude=sorted(vocab_compute.special_ids(subject.tokenizer)),
    )
    return list(zip(subject.token_strings(idx[0].tolist()), (-v for v in val[0].tolist())))
