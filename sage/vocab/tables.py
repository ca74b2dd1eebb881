"""MI vocabulary explanations of SAE features (Wu et al., arXiv 2502.15576): settings, tables, cache, API.

Every feature gets two ranked lists, computed for all features at once
(`sage/vocab/compute.py`, math in `sage/vocab/math.py`; `sage/vocab/lookup.py` loads or computes
them) and cached on disk per
(model, SAE, settings):
- `mi`: words of a fixed English vocabulary ranked by the mutual-information
  objective (`sage.vocab.math.mi_scores`);
- `logitlens`: the model tokens whose unembedding rows best match the feature's
  decoder direction (what Neuronpedia shows as top positive logits), for comparison.

Cache: `$SAGE_HOME/vocab/<key>.safetensors` + `<key>.json`, key = hash of the
subject's fingerprint (SAE weights, hook, model id, dtype), the model's unembedding
and final-norm weights, and the settings: a change to the SAE changes the key.

This module imports neither torch nor the model code, so that a cached answer
(`sage vocab --feature N`) costs well under the time it takes to import them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from sage import config
from sage.errors import ConfigError, require_choice, require_ints, require_range
from sage.io import atomic_path, cache_key, write_text

METHODS = ("mi", "logitlens")
#: MI variants (sage/vocab/compute.py says how they differ): "ours" and the released code's "reference"
VARIANTS = ("ours", "reference")
#: the temperatures alpha = beta of each variant (see `VocabConfig`)
VARIANT_TEMPERATURE = {"ours": 0.1, "reference": 1.0}
#: The default variant, chosen by the output-side measurement (benchmarks/output_effects.py:
#: the rise in log-probability of a feature's top-10 MI words when it is amplified, against
#: matched control words), not by taste; the figures are in docs/methods.md.
DEFAULT_VARIANT = "ours"
#: Bump when the vocabulary filter, the math or the cache layout changes.
#: 2: meta holds the model's token vocabulary (for the reference statistics).
CACHE_FORMAT = 2


@dataclass(frozen=True)
class VocabConfig:
    """Every default of the MI vocabulary, in one place.

    alpha / beta: temperatures of p(w|c) and p(c|w), in units of s (feature direction .
    word embedding). The paper's released code (JacksonWuxs/SteeringLLMs_with_MIExplanations,
    MI_explainer.py, `MIExplainer.explain`) uses alpha = beta = 1.0 on encoder rows with its own
    objective: the "reference" variant (`for_variant`, sage/vocab/compute.py). In "ours" s is
    a cosine-like score: on SmolLM2-135M it has a standard deviation of ~0.1-0.2 across
    the vocabulary for one direction, so 0.1 spreads s/T over a few units, like the
    model's own logits (std ~3.7), whereas 1.0 would make p(w|c) almost uniform. A smaller
    alpha collapses p(w|c) onto the logit-lens top word; a larger beta flattens p(c|w).
    """

    #: "ours" (unit decoder directions through the final norm, PMI objective) or "reference" (the
    #: released code's encoder rows and objective); use `for_variant` to get its temperatures too
    variant: str = "ours"
    #: Vocabulary: the `n_words` most frequent words that pass the filter (vocab_compute.load_vocabulary).
    n_words: int = 5000
    #: shortest vocabulary word, in characters
    min_chars: int = 2
    #: temperature of p(w|c), in units of s (see above)
    alpha: float = 0.1
    #: temperature of p(c|w), in units of s
    beta: float = 0.1
    #: Words (MI) and tokens (logit lens) kept per feature in the cache.
    keep: int = 50
    #: Features per chunk: bounds memory at chunk x (model vocabulary) floats for the logit lens.
    chunk: int = 256
    #: Corpus statistics: a word is "superficial" if it is among the `superficial_rank`
    #: most frequent vocabulary words or shorter than `superficial_chars` characters;
    #: it "dominates" if more than `dominate_share` of the features list it. These are the
    #: reference's values (MI_explainer.py, `__main__`: i < 250 or len < 4; share > 0.1).
    superficial_rank: int = 250
    superficial_chars: int = 4
    dominate_share: float = 0.10
    #: words per feature in our statistics (`explanation_stats`), and in the reference's
    #: (`reference_stats`; MI_explainer.py's `explain(topK=50)`)
    stats_top: int = 20
    reference_top: int = 50

    def __post_init__(self) -> None:
        require_ints(self, "n_words", "min_chars", "keep", "chunk", "superficial_rank", "superficial_chars")
        require_ints(self, "stats_top", "reference_top")
        require_range(self, "alpha", 0, open_low=True)
        require_range(self, "beta", 0, open_low=True)
        require_range(self, "dominate_share", 0, 1, open_low=True)
        require_choice(self, "variant", VARIANTS)

    def cache_fields(self) -> dict:
        """The settings that change the cached tables (chunking and statistics do not)."""
        d = asdict(self)
        return {k: d[k] for k in ("variant", "n_words", "min_chars", "alpha", "beta", "keep")}

    def for_variant(self, variant: str) -> VocabConfig:
        """These settings with `variant` and its temperatures (VARIANT_TEMPERATURE)."""
        if variant not in VARIANTS:
            raise ConfigError(f"unknown MI variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        t = VARIANT_TEMPERATURE[variant]
        return replace(self, variant=variant, alpha=t, beta=t)


VOCAB = VocabConfig().for_variant(DEFAULT_VARIANT)


@dataclass
class VocabTables:
    """Rankings of every feature. words: the vocabulary, most frequent first.

    mi_idx / mi_score: [F, keep] indices into `words` and MI scores, best first.
    ll_idx / ll_score: [F, keep] token ids and direction . unembedding, best first.
    token_text: decoded text of every token id in ll_idx (leading space kept).
    """

    words: list[str]
    mi_idx: np.ndarray
    mi_score: np.ndarray
    ll_idx: np.ndarray
    ll_score: np.ndarray
    token_text: dict[int, str]
    settings: VocabConfig = VOCAB
    meta: dict = field(default_factory=dict)

    @property
    def d_sae(self) -> int:
        return int(self.mi_idx.shape[0])

    def _check(self, feature: int, top: int, table: np.ndarray) -> None:
        if not isinstance(feature, int) or not 0 <= feature < self.d_sae:
            raise ConfigError(f"feature {feature} is out of range: this SAE has features 0-{self.d_sae - 1}")
        keep = int(table.shape[1])
        if not 1 <= top <= keep:
            raise ConfigError(f"top must be between 1 and {keep} (the cache keeps {keep} per feature)")

    def mi(self, feature: int, top: int = 20) -> list[tuple[str, float]]:
        """The `top` vocabulary words of `feature` by MI score, best first."""
        self._check(feature, top, self.mi_idx)
        return [
            (self.words[i], s)
            for i, s in zip(self.mi_idx[feature, :top].tolist(), self.mi_score[feature, :top].tolist())
        ]

    def logit_lens(self, feature: int, top: int = 20) -> list[tuple[str, float]]:
        """The `top` tokens (decoded text) of `feature` by logit lens, best first."""
        self._check(feature, top, self.ll_idx)
        return [
            (self.token_text[i], s)
            for i, s in zip(self.ll_idx[feature, :top].tolist(), self.ll_score[feature, :top].tolist())
        ]

    def ranked(self, method: str, feature: int, top: int = 20) -> list[tuple[str, float]]:
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        return self.mi(feature, top) if method == "mi" else self.logit_lens(feature, top)

    def stats(self, top: int | None = None) -> dict:
        """Corpus statistics of both methods over all features, by our definitions (`explanation_stats`,
        `top` words each, default `stats_top`) and by the reference's (`reference_stats`, `reference_top`
        words each). {"ours": {"mi": ..., "logitlens": ...}, "reference": {...}}."""
        from sage.vocab.math import explanation_stats, reference_stats

        s = self.settings
        top = top or s.stats_top
        ref_top = min(s.reference_top, self.mi_idx.shape[1], self.ll_idx.shape[1])
        self._check(0, top, self.mi_idx)
        self._check(0, top, self.ll_idx)
        frequent = set(self.words[: s.superficial_rank])

        def lists(n: int) -> dict[str, list[list[str]]]:
            return {
                "mi": [[self.words[i] for i in row] for row in self.mi_idx[:, :n].tolist()],
                "logitlens": [
                    [self.token_text[i].strip().lower() for i in row] for row in self.ll_idx[:, :n].tolist()
                ],
            }

        ours = {
            name: explanation_stats(
                ls, frequent, superficial_chars=s.superficial_chars, dominate_share=s.dominate_share
            )
            for name, ls in lists(top).items()
        }
        vocabularies = {"mi": self.words, "logitlens": self.meta.get("token_vocabulary", [])}
        reference = {
            name: reference_stats(
                ls,
                vocabularies[name],
                frequent,
                superficial_chars=s.superficial_chars,
                dominate_share=s.dominate_share,
            )
            for name, ls in lists(ref_top).items()
        }
        return {"ours": ours, "reference": reference}

    def save(self, stem: Path) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mi_idx": self.mi_idx.astype(np.int32),
            "mi_score": self.mi_score.astype(np.float32),
            "ll_idx": self.ll_idx.astype(np.int32),
            "ll_score": self.ll_score.astype(np.float32),
        }
        with atomic_path(stem.with_suffix(".safetensors")) as tmp:
            save_file(arrays, str(tmp))
        doc = {
            "format": CACHE_FORMAT,
            "meta": self.meta,
            "settings": self.settings.cache_fields(),
            "words": self.words,
            "token_text": {str(k): v for k, v in self.token_text.items()},
        }
        # The JSON goes last: its presence marks a complete entry.
        write_text(stem.with_suffix(".json"), json.dumps(doc, ensure_ascii=False))

    @classmethod
    def load(cls, stem: Path, settings: VocabConfig = VOCAB) -> VocabTables | None:
        doc_path, array_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
        if not (doc_path.exists() and array_path.exists()):
            return None
        doc = json.loads(doc_path.read_text())
        if doc.get("format") != CACHE_FORMAT:
            return None
        a = load_file(str(array_path))
        return cls(
            words=doc["words"],
            mi_idx=a["mi_idx"],
            mi_score=a["mi_score"],
            ll_idx=a["ll_idx"],
            ll_score=a["ll_score"],
            token_text={int(k): v for k, v in doc["token_text"].items()},
            settings=settings,
            meta=doc["meta"],
        )


# --- Fast path for the CLI: find the cache without loading the model, the SAE or torch. ---


def _folder_stamp(path: Path) -> list:
    return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.is_file())


def quick_key(model: str, sae: str, dtype: str | None, settings: VocabConfig = VOCAB) -> str | None:
    """A key computed from the CLI arguments and file stamps alone, or None when it cannot be.

    Only for a SAE folder on disk and a local model folder (or the embedded
    default once set up): their files' sizes and modification times stand in for
    the weights, so an edited SAE or model gives a new key.
    """
    # Resolved here rather than with sage.model.subject.parse_sae_spec: importing that module
    # (transformers' model classes) alone takes longer than the whole cached answer.
    if sae.startswith("hf:"):
        return None
    sae_dir = config.DEFAULT_SAE_DIR if sae == config.DEFAULT else Path(sae).expanduser().resolve()
    model_dir = config.embedded_model_dir() if model == config.DEFAULT else Path(model).expanduser()
    if not (sae_dir / "cfg.json").is_file() or not model_dir.is_dir():
        return None
    parts = [
        CACHE_FORMAT,
        model,
        str(model_dir.resolve()),
        _folder_stamp(model_dir),
        str(sae_dir),
        _folder_stamp(sae_dir),
        dtype,
        os.environ.get("SAGE_DTYPE"),
        settings.cache_fields(),
    ]
    return cache_key(parts, length=24)


def _index_path() -> Path:
    return config.vocab_dir() / "index.json"


def cached_tables(quick: str | None, settings: VocabConfig = VOCAB) -> VocabTables | None:
    """Tables remembered under a `quick_key`, or None."""
    if quick is None or not _index_path().exists():
        return None
    key = json.loads(_index_path().read_text()).get(quick)
    tables = VocabTables.load(config.vocab_dir() / key, settings) if key else None
    if tables is not None:
        tables.meta["cache_key"] = key
    return tables


def remember(quick: str | None, tables: VocabTables) -> None:
    """Record that `quick` leads to `tables` (see `cached_tables`)."""
    if quick is None:
        return
    index = json.loads(_index_path().read_text()) if _index_path().exists() else {}
    index[quick] = tables.meta["cache_key"]
    config.vocab_dir().mkdir(parents=True, exist_ok=True)
    write_text(_index_path(), json.dumps(index, indent=0))
