"""A Neuronpedia SAE as an activation source (`sage.store.source`): explain any public SAE, no GPU.

`--subject neuronpedia:MODEL/SOURCE` (e.g. `neuronpedia:gemma-2-2b/20-gemmascope-res-16k`) gives a
`NeuronpediaSubject` and a `NeuronpediaStore` that answer exactly what the agent asks a local
model + SAE, from Neuronpedia's answers only:

- seed data (statistics, top and quantile contexts) from the feature endpoint: its public
  activation records, each a context with per-token values computed by Neuronpedia;
- probes (and every context whose activations SAGE does not already hold) from the activation
  endpoint: Neuronpedia tokenizes the text and runs its model + SAE, so no local tokenizer or
  weights are needed;
- negatives (contexts where the feature stays silent): the activation records of neighbouring
  features of the same source (index +1, -1, +2, ...), run through the activation endpoint for
  this feature, keeping those where it never fires.

Sink position: every context keeps SAGE's convention that position 0 is the sink and is never
read. A context that starts with a BOS-like token (`SINK_TOKENS`) has it there; one that does not
(a window cut from the middle of a document) gets an empty placeholder token there, with value 0,
which no reader counts. No activation value is ever added or changed.

Token ids: Neuronpedia answers with token strings. The subject's `tokenizer` is a `TokenTable`, the
strings seen in answers so far, numbered in order of arrival; it looks up a text as one token string.
The agent's corpus probes and the offline scorer's retrieval use it to find contexts holding a
token, among the contexts Neuronpedia has returned (the source's only corpus).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from sage.errors import ConfigError, RemoteError, require_ints
from sage.io import cache_key
from sage.model.engine import TokenActivations
from sage.model.engine_config import ENGINE
from sage.model.positions import skip_positions
from sage.neuronpedia.api import NeuronpediaClient, NotFound, check_id
from sage.store.activation_store import Context, FeatureStats
from sage.store.math import quantile_picks

PREFIX = "neuronpedia:"
#: tokens that open a sequence in Neuronpedia's data (its converter zeroes them:
#: utils/neuronpedia-utils/neuronpedia_utils/convert-saedashboard-to-neuronpedia-export.py, BOS_TOKENS),
#: plus Llama's and SentencePiece's
SINK_TOKENS = frozenset({"<bos>", "<|endoftext|>", "<|begin_of_text|>", "<s>"})


@dataclass(frozen=True)
class RemoteSourceConfig:
    """How the Neuronpedia source builds its negatives."""

    #: silent-context candidates gathered from neighbouring features before probing them
    negative_pool: int = 64
    #: neighbouring features tried at most for those candidates
    neighbour_features: int = 6

    def __post_init__(self) -> None:
        require_ints(self, "negative_pool", "neighbour_features")


REMOTE = RemoteSourceConfig()


def is_remote(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(PREFIX)


def parse_spec(spec: str) -> tuple[str, str]:
    """`neuronpedia:MODEL/SOURCE` -> (MODEL, SOURCE)."""
    body = spec[len(PREFIX) :] if spec.startswith(PREFIX) else None
    parts = body.split("/") if body else []
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--subject {spec!r}: expected neuronpedia:MODEL/SOURCE, "
            "e.g. neuronpedia:gemma-2-2b/20-gemmascope-res-16k"
        )
    return check_id("model", parts[0]), check_id("source", parts[1])


def with_sink(tokens: Sequence[str], values: Sequence[float]) -> tuple[list[str], list[float]]:
    """The context with SAGE's sink slot(s) in front (see the module docstring)."""
    skip = skip_positions()
    have = 1 if tokens and tokens[0] in SINK_TOKENS else 0
    pad = max(skip - have, 0)
    return [""] * pad + list(tokens), [0.0] * pad + [float(v) for v in values]


class TokenTable:
    """Token strings seen in Neuronpedia's answers, numbered in order of arrival (see module docstring).

    Implements the part of a tokenizer SAGE's readers use: `tok(text)["input_ids"]` (the text as one
    token string; a string never seen gets a new id that no context holds), `decode`, `len`."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._strs: list[str] = []
        self._lock = threading.Lock()

    def id(self, token: str) -> int:
        with self._lock:
            if token not in self._ids:
                self._ids[token] = len(self._strs)
                self._strs.append(token)
            return self._ids[token]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def __call__(self, text, add_special_tokens: bool = False, **_) -> dict:  # noqa: ARG002
        if isinstance(text, str):
            return {"input_ids": [self.id(text)]}
        return {"input_ids": [[self.id(t)] for t in text]}

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._strs[int(i)] for i in ids)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._strs[int(i)] for i in ids]

    def __len__(self) -> int:
        return len(self._strs)


class NeuronpediaSubject:
    """A Neuronpedia model + SAE source: its identity, and its feature records (memoised)."""

    def __init__(self, client: NeuronpediaClient, model: str, source: str):
        self.client, self.model, self.source = client, model, source
        self.model_id = model
        self.sae_label = f"{PREFIX}{model}/{source}"
        self.tokenizer = TokenTable()
        self._records: dict[int, dict] = {}
        self._source_row: dict | None = None
        #: the first feature asked about: its answer (carrying the source row) is fetched first
        self._hint: int | None = None
        self._lock = threading.Lock()

    def record(self, index: int) -> dict:
        """The feature's record from the feature endpoint (raises NotFound for an unknown feature)."""
        with self._lock:
            if index in self._records:
                return self._records[index]
        rec = self.client.feature(self.model, self.source, index)
        if rec["modelId"] != self.model or rec["layer"] != self.source or int(rec["index"]) != index:
            raise RemoteError(
                f"Neuronpedia answered feature {rec['modelId']}/{rec['layer']}/{rec['index']} "
                f"when asked for {self.model}/{self.source}/{index}"
            )
        with self._lock:
            self._records[index] = rec
            if rec.get("source"):
                self._source_row = rec["source"]
        return rec

    def _sae_config(self) -> dict:
        if self._source_row is None:
            self.record(self._hint or 0)  # any feature's answer carries the source row
        return (self._source_row or {}).get("saelensConfig") or {}

    @property
    def d_sae(self) -> int:
        cfg = self._sae_config()
        d = cfg.get("d_sae")
        if not isinstance(d, int) or d < 1:
            raise RemoteError(
                f"Neuronpedia does not state the width of {self.sae_label} (source.saelensConfig.d_sae); "
                "name the features explicitly"
            )
        return d

    @property
    def hook_name(self) -> str:
        cfg = self._sae_config()
        meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
        return str(cfg.get("hook_name") or meta.get("hook_name") or self.source)

    def check_feature(self, index: int) -> int:
        """`index` if it can be a feature (the server's 404 is the final word on unknown ones)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"feature {index!r} must be a non-negative integer")
        if self._hint is None:
            self._hint = index
        cfg = self._sae_config() if self._source_row is not None else {}
        d = cfg.get("d_sae")
        if isinstance(d, int) and index >= d:
            raise ConfigError(f"feature {index} is out of range: {self.sae_label} has features 0-{d - 1}")
        return index

    def fingerprint(self) -> str:
        return cache_key(PREFIX, self.client.base_url, self.model, self.source)

    def info(self) -> dict:
        return {
            "model": self.model,
            "model_type": "neuronpedia",
            "dtype": "remote",
            "sae": self.sae_label,
            "architecture": str(self._sae_config().get("architecture") or "unknown"),
            "hook_name": self.hook_name,
            "d_sae": self.d_sae,
            "api": self.client.base_url,
            "sink_token": "<bos> or a placeholder (sage.neuronpedia.source)",
        }


class NeuronpediaEngine:
    """Activations on custom texts through the activation endpoint (`sage.store.source.ProbeEngine`)."""

    def __init__(self, subject: NeuronpediaSubject):
        self.subject = subject

    def run(self, texts: Sequence[str], features: Sequence[int] | None = None) -> list[TokenActivations]:
        if features is None:
            raise ConfigError("the Neuronpedia activation endpoint answers one feature at a time: name them")
        s = self.subject
        feats = [s.check_feature(int(f)) for f in features]
        per_feature = [s.client.activations(s.model, s.source, f, list(texts)) for f in feats]
        out = []
        for i in range(len(texts)):
            cols, tokens = [], None
            for f, answers in zip(feats, per_feature):
                toks, vals = with_sink(answers[i]["tokens"], answers[i]["values"])
                if tokens is not None and toks != tokens:
                    raise RemoteError(f"Neuronpedia tokenized text {i} differently for feature {f}")
                tokens = toks
                cols.append(vals)
            acts = torch.tensor(cols, dtype=torch.float32).T.reshape(len(tokens or []), len(feats))
            out.append(
                TokenActivations(
                    tokens=tokens or [],
                    token_ids=s.tokenizer.ids(tokens or []),
                    acts=acts,
                    features=feats,
                    sinks=list(range(ENGINE.skip_positions)),
                )
            )
        return out

    def max_acts(self, texts: Sequence[str], feature: int) -> list[float]:
        skip = skip_positions()
        return [max(ta.column(feature)[skip:].tolist(), default=0.0) for ta in self.run(texts, [feature])]


class NeuronpediaStore:
    """The activation source of one Neuronpedia SAE (`sage.store.source.ActivationSource`).

    Contexts get ids in order of arrival over all features (a text seen twice keeps its id); each
    feature's activations on a context are the server's, kept per feature."""

    def __init__(self, subject: NeuronpediaSubject, settings: RemoteSourceConfig = REMOTE):
        self.subject, self.settings = subject, settings
        self.engine = NeuronpediaEngine(subject)
        self.corpus_name = f"neuronpedia ({subject.client.base_url})"
        self._texts: list[str] = []
        self._tokens: list[list[str]] = []
        self._by_text: dict[str, int] = {}
        self._acts: dict[int, dict[int, tuple[list[str], list[float]]]] = {}
        self._own: dict[int, list[int]] = {}
        self._silent: dict[int, list[int]] = {}
        self._lock = threading.RLock()

    # -- bookkeeping -----------------------------------------------------------------------------
    def _add(self, tokens: list[str]) -> int:
        text = "".join(tokens[skip_positions() :])
        with self._lock:
            if text not in self._by_text:
                self._by_text[text] = len(self._texts)
                self._texts.append(text)
                self._tokens.append(tokens)
            return self._by_text[text]

    def _load(self, feature: int) -> dict:
        rec = self.subject.record(self.subject.check_feature(feature))
        with self._lock:
            if feature not in self._own:
                acts, own = self._acts.setdefault(feature, {}), []
                for a in rec["activations"]:
                    toks, vals = with_sink(a["tokens"], a["values"])
                    if len(toks) != len(vals):
                        raise RemoteError(
                            f"Neuronpedia's record of feature {feature} has a context with {len(toks)} "
                            f"tokens but {len(vals)} values"
                        )
                    cid = self._add(toks)
                    if cid not in acts:
                        acts[cid] = (toks, vals)
                        own.append(cid)
                own.sort(key=lambda c: -_peak(acts[c][1]))
                self._own[feature] = own
        return rec

    def _context(self, feature: int, cid: int, quantile: int | None = None) -> Context:
        toks, vals = self._acts[feature][cid]
        return Context(cid, self.subject.tokenizer.ids(toks), toks, vals, quantile)

    # -- what the agent and the evaluation read --------------------------------------------------
    def feature_stats(self, feature: int) -> FeatureStats:
        """max: the record's `maxActApprox` (else the largest context peak); frequency: `frac_nonzero`;
        mean over firing tokens: from the activation histogram (`freq_hist_data_bar_*`), else from
        the firing tokens of the returned contexts (which over-represent strong activations)."""
        rec = self._load(feature)
        peaks = [_peak(v) for _, v in self._acts[feature].values()]
        approx = rec.get("maxActApprox") or 0.0
        max_act = float(approx) if approx > 0 else max(peaks, default=0.0)
        heights = rec.get("freq_hist_data_bar_heights") or []
        centres = rec.get("freq_hist_data_bar_values") or []
        if heights and len(heights) == len(centres) and sum(heights) > 0:
            mean = sum(h * v for h, v in zip(heights, centres)) / sum(heights)
        else:
            firing = [a for _, v in self._acts[feature].values() for a in v[skip_positions() :] if a > 0]
            mean = sum(firing) / len(firing) if firing else 0.0
        return FeatureStats(max_act, float(rec.get("frac_nonzero") or 0.0), float(mean))

    def top(self, feature: int, k: int | None = None) -> list[Context]:
        """The feature's records by peak activation, strongest first (non-firing ones dropped)."""
        self._load(feature)
        ids = [c for c in self._own[feature] if _peak(self._acts[feature][c][1]) > 0]
        return [self._context(feature, c) for c in ids[: k or ENGINE.top_k]]

    def firing_contexts(self, feature: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._load(feature)
        ids = [c for c in self._own[feature] if _peak(self._acts[feature][c][1]) > 0]
        peaks = [_peak(self._acts[feature][c][1]) for c in ids]
        return torch.tensor(ids, dtype=torch.long), torch.tensor(peaks, dtype=torch.float32)

    def quantile_samples(
        self,
        feature: int,
        n_quantiles: int | None = None,
        per_quantile: int | None = None,
        seed: int = 0,
        exclude_top: int = 0,
    ) -> list[Context]:
        """The store's rule (`sage.store.math.quantile_picks`) over the feature's records."""
        nq, per = n_quantiles or ENGINE.n_quantiles, per_quantile or ENGINE.per_quantile
        cids, maxima = self.firing_contexts(feature)
        top = [c.context_id for c in self.top(feature, exclude_top)] if exclude_top else []
        return [
            self._context(feature, c, b)
            for c, b in quantile_picks(cids, maxima, top, nq, per, seed + feature)
        ]

    def random_negatives(self, feature: int, n: int | None = None, seed: int = 0) -> list[Context]:
        """Contexts where the feature never fires (module docstring), in a seeded random order."""
        pool = self._negatives(feature)
        g = torch.Generator().manual_seed(seed + 7919 * feature)
        order = torch.randperm(len(pool), generator=g).tolist()
        return [self._context(feature, pool[i]) for i in order[: n or ENGINE.n_random_negatives]]

    def _negatives(self, feature: int) -> list[int]:
        self._load(feature)
        with self._lock:
            if feature in self._silent:
                return self._silent[feature]
        own_texts = {self._texts[c] for c in self._own[feature]}
        candidates: list[int] = []
        for other in _neighbours(feature, self.settings.neighbour_features):
            if len(candidates) >= self.settings.negative_pool:
                break
            try:
                self._load(other)
            except NotFound:
                continue
            for c in self._own[other]:
                if self._texts[c] not in own_texts and c not in candidates and self._texts[c].strip():
                    candidates.append(c)
        candidates = candidates[: self.settings.negative_pool]
        self._probe(feature, candidates)
        silent = [c for c in candidates if _peak(self._acts[feature][c][1]) <= 0]
        with self._lock:
            self._silent[feature] = silent
        return silent

    def _probe(self, feature: int, cids: Sequence[int]) -> None:
        """Fetch the feature's activations on the contexts it has none for yet."""
        todo = [c for c in dict.fromkeys(cids) if c not in self._acts.setdefault(feature, {})]
        if not todo:
            return
        results = self.engine.run([self._texts[c] for c in todo], [feature])
        with self._lock:
            for c, ta in zip(todo, results):
                self._acts[feature][c] = (ta.tokens, ta.column(feature).tolist())

    def contexts(
        self, feature: int, context_ids: Sequence[int], quantiles: Sequence[int | None] | None = None
    ) -> list[Context]:
        """Contexts by id with this feature's activations (from the server; fetched when missing)."""
        self._load(feature)
        ids = [int(c) for c in context_ids]
        self._probe(feature, ids)
        quantiles = quantiles or [None] * len(ids)
        return [self._context(feature, c, q) for c, q in zip(ids, quantiles)]

    def search(
        self, token_ids: Sequence[int], limit: int = 20, exclude: Sequence[int] = (), seed: int = 0
    ) -> list[int]:
        """Ids of the contexts seen so far that hold any of `token_ids` (after the sink), in random order."""
        wanted = set(int(t) for t in token_ids)
        if not wanted:
            return []
        skip, tok, excluded = skip_positions(), self.subject.tokenizer, set(int(e) for e in exclude)
        with self._lock:
            hits = [
                c
                for c, toks in enumerate(self._tokens)
                if c not in excluded and wanted.intersection(tok.ids(toks[skip:]))
            ]
        order = torch.randperm(len(hits), generator=torch.Generator().manual_seed(seed)).tolist()
        return [hits[i] for i in order[:limit]]

    def iter_texts(self, context_ids: Sequence[int]) -> Iterator[str]:
        for c in context_ids:
            yield self._texts[int(c)]

    def context_tokens(self, context_ids: Sequence[int]) -> list[list[str]]:
        """Token strings of contexts by id, sink first (as the server tokenised them)."""
        with self._lock:
            return [list(self._tokens[int(c)]) for c in context_ids]

    def neuronpedia_explanations(self, feature: int) -> list[dict]:
        """Neuronpedia's own explanations of the feature, in the server's order (best scored first)."""
        return list(self._load(feature).get("explanations") or [])


def _peak(values: Sequence[float]) -> float:
    return max(values[skip_positions() :], default=0.0)


def _neighbours(feature: int, n: int) -> list[int]:
    """feature+1, feature-1, feature+2, ... (non-negative), at most n of them."""
    out, k = [], 1
    while len(out) < n and k <= n:
        out += [i for i in (feature + k, feature - k) if i >= 0]
        k += 1
    return out[:n]


def open_source(spec: str, client: NeuronpediaClient | None = None) -> NeuronpediaStore:
    """The activation source of `neuronpedia:MODEL/SOURCE` (its subject is `.subject`). No request is
    sent until a feature is asked for."""
    model, source = parse_spec(spec)
    return NeuronpediaStore(NeuronpediaSubject(client or NeuronpediaClient(), model, source))
