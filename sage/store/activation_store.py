"""Activation store: one pass over a corpus mines statistics for every feature at once.

Kept per feature: the top-k contexts with per-token activations, the maximum of
every context where the feature fires (sparse; used for quantile samples and
non-activating samples), token-level activation frequency, mean and max. All
statistics skip position 0 (the sink token).

On disk under `$SAGE_HOME/stores/<key>/`, where key = fingerprint of (model,
SAE weights, hook, dtype, corpus, context length). Mining is saved every segment
(`segment_contexts` contexts) and resumes from the last saved segment; calling
`mine(max_tokens=...)` with a larger budget extends a finished store.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from sage import config
from sage.data.corpus import Corpus, load_corpus
from sage.errors import ConfigError, require_ints
from sage.io import atomic_path, cache_key, write_text
from sage.model.compiled import compiled_forward
from sage.model.engine import ActivationEngine
from sage.model.engine_config import ENGINE
from sage.model.positions import peak_position
from sage.model.subject import Subject
from sage.store.math import quantile_picks
from sage.store.mining import MiningState


@dataclass(frozen=True)
class StoreConfig:
    #: tokens per mined context, the sink included (`EngineConfig.context_len`)
    context_len: int = ENGINE.context_len
    #: top-activating contexts kept per feature
    top_k: int = ENGINE.top_k
    #: activation-quantile bins sampled per feature
    n_quantiles: int = ENGINE.n_quantiles
    #: contexts kept per quantile bin
    per_quantile: int = ENGINE.per_quantile
    #: contexts kept per feature where it does not fire
    n_random_negatives: int = ENGINE.n_random_negatives
    #: contexts mined between two saves: what an interruption can lose at most
    segment_contexts: int = 1024
    #: None = the whole corpus.
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        require_ints(self, "top_k", "n_quantiles", "per_quantile", "n_random_negatives", "segment_contexts")
        require_ints(self, "context_len", minimum=ENGINE.skip_positions + 1)
        if self.max_tokens is not None:
            require_ints(self, "max_tokens")


@dataclass(frozen=True)
class FeatureStats:
    max_activation: float
    frequency: float  # fraction of (non-sink) tokens where the feature is > 0
    mean_activation: float  # mean over the tokens where it fires


@dataclass
class Context:
    """One corpus context for one feature. tokens[0] is the sink token; acts aligns with tokens."""

    context_id: int
    token_ids: list[int]
    tokens: list[str]
    acts: list[float]
    quantile: int | None = None

    @property
    def max_act(self) -> float:
        return max(self.acts[ENGINE.skip_positions :], default=0.0)

    @property
    def max_pos(self) -> int:
        """Index of the strongest token after the sink (0 when there is none)."""
        return peak_position(self.acts)

    @property
    def text(self) -> str:
        return "".join(self.tokens[ENGINE.skip_positions :])

    def marked_text(self) -> str:
        """The context's text with the max-activating token marked as [[token]]."""
        skip, pos = ENGINE.skip_positions, self.max_pos
        return "".join(f"[[{t}]]" if i == pos else t for i, t in enumerate(self.tokens) if i >= skip)

    def to_dict(self) -> dict:
        return {
            "context_id": self.context_id,
            "text": self.text,
            "tokens": self.tokens,
            "activations": [round(a, 4) for a in self.acts],
            "max_activation": round(self.max_act, 4),
            "max_position": self.max_pos,
            "max_token": self.tokens[self.max_pos],
            "quantile": self.quantile,
        }


def load_state(folder: Path) -> MiningState:
    """A store's saved statistics (`state.safetensors`), top-k activations back in float32."""
    saved = load_file(str(folder / "state.safetensors"))
    return MiningState(**{**saved, "top_acts": saved["top_acts"].float()})


class ActivationStore:
    """Mined statistics for one (subject, corpus, context length)."""

    def __init__(
        self, subject: Subject, corpus: Corpus, cfg: StoreConfig = StoreConfig(), root: Path | None = None
    ):
        self.subject, self.corpus, self.cfg = subject, corpus, cfg
        key = cache_key([subject.fingerprint(), corpus.fingerprint, cfg.context_len, cfg.top_k])
        self.dir = (root or config.stores_dir()) / key
        self.engine = ActivationEngine(subject)
        self._loaded = False

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def load_or_mine(
        cls,
        subject: Subject,
        corpus: Corpus | str | None = None,
        cfg: StoreConfig = StoreConfig(),
        progress: bool = True,
    ) -> ActivationStore:
        """Open the store for (subject, corpus), mining first if it is missing or incomplete."""
        corpus = load_corpus(corpus or config.DEFAULT) if not isinstance(corpus, Corpus) else corpus
        store = cls(subject, corpus, cfg)
        if not store.complete(cfg.max_tokens):
            store.mine(cfg.max_tokens, progress=progress)
        return store

    def meta(self) -> dict:
        path = self.dir / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def complete(self, max_tokens: int | None = None) -> bool:
        m = self.meta()
        if not m:
            return False
        if m.get("exhausted"):
            return True
        return max_tokens is not None and m["tokens"] >= max_tokens

    # -- mining ----------------------------------------------------------------------------------
    def mine(self, max_tokens: int | None = None, progress: bool = True, compile: bool = False) -> None:
        """Run the corpus through the subject (resuming / extending saved work) until `max_tokens`
        non-sink tokens are mined or the corpus ends.

        Statistics are reduced on the subject's device (`sage.store.mining.MiningState`); each saved
        segment is written by a background thread while the next one is mined. With `compile`, a long
        job's forward switches to compiled decoder blocks (`sage.model.compiled`).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        F, K, T = self.subject.d_sae, self.cfg.top_k, self.cfg.context_len
        skip, device = ENGINE.skip_positions, self.subject.device
        meta = self.meta() or {
            "contexts": 0,
            "tokens": 0,
            "segments": 0,
            "exhausted": False,
            "model": self.subject.model_id,
            "sae": self.subject.sae_label,
            "hook_name": self.subject.site.hook_name,
            "corpus": self.corpus.name,
            "context_len": T,
            "top_k": K,
            "d_sae": F,
        }
        if meta.get("exhausted"):
            return
        state = load_state(self.dir).to(device) if meta["contexts"] else MiningState.empty(F, K, T, device)
        contexts = self.corpus.contexts(self.subject.tokenizer, self.subject.sink_id, T)
        for _ in range(meta["contexts"]):  # resume: skip what is already mined (tokenising is cheap)
            if next(contexts, None) is None:
                break
        limit = max_tokens if max_tokens is not None else float("inf")
        bar = tqdm(
            total=None if max_tokens is None else max_tokens,
            initial=meta["tokens"],
            unit="tok",
            unit_scale=True,
            desc="mining activations",
            disable=not progress,
        )
        bs = self.engine.batch_size
        fast = compiled_forward(self.subject.model, self.subject.site) if compile else nullcontext()
        with fast, ThreadPoolExecutor(max_workers=1, thread_name_prefix="sage-store-writer") as writer:
            pending = None
            while meta["tokens"] < limit:
                segment = [c for _, c in zip(range(self.cfg.segment_contexts), contexts)]
                if not segment:
                    meta["exhausted"] = True
                    break
                seg_ids = torch.tensor(segment, dtype=torch.long)
                maxima = []
                start = time.perf_counter()
                for b in range(0, len(segment), bs):
                    ids = seg_ids[b : b + bs]
                    acts, _ = self.engine.sparse_acts(ids)
                    cids = torch.arange(meta["contexts"], meta["contexts"] + len(ids), device=device)
                    maxima.append(state.update(acts, cids))
                    meta["contexts"] += len(ids)
                    meta["tokens"] += len(ids) * (T - skip)
                    bar.update(len(ids) * (T - skip))
                ctx, feat, mx = (torch.cat(part).cpu() for part in zip(*maxima))
                bar.set_postfix(tok_s=f"{len(segment) * (T - skip) / (time.perf_counter() - start):.0f}")
                if pending is not None:
                    pending.result()  # saves land in order; a failed save stops mining here
                snapshot = {k: v.to("cpu", copy=True) for k, v in state.sorted().tensors().items()}
                pending = writer.submit(self._save, dict(meta), snapshot, (seg_ids, ctx, feat, mx))
                meta["segments"] += 1
            if pending is not None:
                pending.result()
            if pending is None or meta["exhausted"]:  # else the last segment's save wrote just this
                self._save(meta, {k: v.cpu() for k, v in state.sorted().tensors().items()})
        bar.close()
        self._loaded = False

    def _save(self, meta: dict, state: dict[str, torch.Tensor], segment: tuple | None = None) -> None:
        """Write a mined segment (token ids, and its sparse context maxima), then the state, then meta:
        meta names how many segments are trustworthy, so an interruption at any point resumes cleanly."""
        if segment is not None:
            self._save_segment(meta["segments"], *segment)
            meta = {**meta, "segments": meta["segments"] + 1}
        with atomic_path(self.dir / "state.safetensors") as tmp:
            save_file({**state, "top_acts": state["top_acts"].to(torch.float16)}, str(tmp))
        write_text(self.dir / "meta.json", json.dumps(meta, indent=2))

    def _save_segment(self, number: int, ids, ctx, feat, mx) -> None:
        """Write segment `number`: its contexts' token ids [N, T], and (context, feature, max) of every
        pair where the feature fires. It counts once meta.json says so (`sage.store.shards` writes
        shards' segments in any order and meta last)."""
        save_file(
            {
                "token_ids": ids.to(torch.int32),
                "ctx": ctx.to(torch.int32),
                "feat": feat.to(torch.int32),
                "max": mx.to(torch.float16),
            },
            str(self._segment_path(number)),
        )

    def _segment_path(self, number: int) -> Path:
        return self.dir / f"segment_{number:05d}.safetensors"

    def saved_segments(self) -> list[dict[str, torch.Tensor]]:
        """The tensors of every segment meta.json counts (token_ids, ctx, feat, max), in order."""
        return [load_file(str(self._segment_path(i))) for i in range(self.meta().get("segments", 0))]

    # -- queries ---------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        meta = self.meta()
        if not meta:
            raise ConfigError(f"the activation store {self.dir} is not mined yet: run `sage mine`")
        st = load_file(str(self.dir / "state.safetensors"))
        self._top_vals, self._top_ids, self._top_acts = st["top_vals"], st["top_ids"], st["top_acts"]
        self._fire, self._sum, self._max = st["fire_count"], st["act_sum"], st["max_act"]
        segs = self.saved_segments()
        self._tokens = (
            torch.cat([s["token_ids"] for s in segs])
            if segs
            else torch.zeros((0, self.cfg.context_len), dtype=torch.int32)
        )
        feat = torch.cat([s["feat"] for s in segs]) if segs else torch.zeros(0, dtype=torch.int32)
        order = torch.argsort(feat, stable=True)  # group the sparse maxima by feature for fast lookup
        self._nz_feat = feat[order]
        self._nz_ctx = torch.cat([s["ctx"] for s in segs])[order] if segs else feat
        self._nz_max = torch.cat([s["max"] for s in segs])[order].float() if segs else feat.float()
        self._meta = meta
        self._loaded = True

    @property
    def n_contexts(self) -> int:
        self._load()
        return len(self._tokens)

    def status(self) -> dict:
        m = self.meta()
        return {
            "path": str(self.dir),
            "mined": bool(m),
            "contexts": m.get("contexts", 0),
            "tokens": m.get("tokens", 0),
            "complete": bool(m.get("exhausted")),
            "corpus": self.corpus.name,
            "context_len": self.cfg.context_len,
        }

    def feature_stats(self, feature: int) -> FeatureStats:
        self._load()
        f = self.subject.check_feature(feature)
        n_tok = max(self._meta["tokens"], 1)
        fires = float(self._fire[f])
        return FeatureStats(float(self._max[f]), fires / n_tok, float(self._sum[f]) / fires if fires else 0.0)

    def _decode(self, ids: Sequence[int]) -> list[str]:
        return self.subject.token_strings(ids)

    def top(self, feature: int, k: int | None = None) -> list[Context]:
        """The top-k contexts by max activation (non-firing slots dropped), strongest first."""
        self._load()
        f = self.subject.check_feature(feature)
        out = []
        for j in range(min(k or self.cfg.top_k, self.cfg.top_k)):
            if self._top_vals[f, j] <= 0:
                break
            cid = int(self._top_ids[f, j])
            ids = self._tokens[cid].tolist()
            out.append(Context(cid, ids, self._decode(ids), self._top_acts[f, j].float().tolist()))
        return out

    def firing_contexts(self, feature: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(context ids, their max activation) of every context where the feature fires."""
        self._load()
        f = self.subject.check_feature(feature)
        lo = int(torch.searchsorted(self._nz_feat, torch.tensor(f, dtype=self._nz_feat.dtype)))
        hi = int(torch.searchsorted(self._nz_feat, torch.tensor(f, dtype=self._nz_feat.dtype), right=True))
        return self._nz_ctx[lo:hi].long(), self._nz_max[lo:hi]

    def contexts(
        self, feature: int, context_ids: Sequence[int], quantiles: Sequence[int | None] | None = None
    ) -> list[Context]:
        """Contexts by id, with this feature's per-token activations recomputed by the engine."""
        self._load()
        if not context_ids:
            return []
        ids = self._tokens[torch.tensor(list(context_ids))].long()
        acts = self.engine.feature_acts(ids, None, [feature])[..., 0].cpu()
        quantiles = quantiles or [None] * len(context_ids)
        return [
            Context(int(c), ids[i].tolist(), self._decode(ids[i].tolist()), acts[i].tolist(), quantiles[i])
            for i, c in enumerate(context_ids)
        ]

    def quantile_samples(
        self,
        feature: int,
        n_quantiles: int | None = None,
        per_quantile: int | None = None,
        seed: int = 0,
        exclude_top: int = 0,
    ) -> list[Context]:
        """Random firing contexts from each of `n_quantiles` equal-width activation bins (lowest bin first),
        excluding the `exclude_top` strongest contexts."""
        nq, per = n_quantiles or self.cfg.n_quantiles, per_quantile or self.cfg.per_quantile
        cids, maxima = self.firing_contexts(feature)
        top = [c.context_id for c in self.top(feature, exclude_top)] if exclude_top else []
        picked = quantile_picks(cids, maxima, top, nq, per, seed + feature)
        return self.contexts(feature, [c for c, _ in picked], [b for _, b in picked])

    def random_negatives(self, feature: int, n: int | None = None, seed: int = 0) -> list[Context]:
        """Random contexts where the feature never fires."""
        self._load()
        firing = set(self.firing_contexts(feature)[0].tolist())
        g = torch.Generator().manual_seed(seed + 7919 * feature)
        order = torch.randperm(self.n_contexts, generator=g).tolist()
        chosen = [c for c in order if c not in firing][: n or self.cfg.n_random_negatives]
        return self.contexts(feature, chosen)

    def search(
        self, token_ids: Sequence[int], limit: int = 20, exclude: Sequence[int] = (), seed: int = 0
    ) -> list[int]:
        """Ids of contexts that contain any of `token_ids` (outside the sink position), in random order."""
        self._load()
        if not token_ids:
            return []
        body = self._tokens[:, ENGINE.skip_positions :]
        hit = torch.isin(body, torch.tensor(list(token_ids), dtype=body.dtype)).any(dim=1)
        if exclude:
            hit[torch.tensor(list(exclude))] = False
        ids = torch.nonzero(hit).flatten()
        ids = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
        return ids[:limit].tolist()

    def iter_texts(self, context_ids: Sequence[int]) -> Iterator[str]:
        for tokens in self.context_tokens(context_ids):
            yield "".join(tokens[ENGINE.skip_positions :])

    def context_tokens(self, context_ids: Sequence[int]) -> list[list[str]]:
        """The token strings of contexts by id, sink first: no forward pass (`contexts` runs one)."""
        self._load()
        return [self._decode(self._tokens[c].tolist()) for c in context_ids]

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._loaded = False
