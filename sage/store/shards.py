"""Mining a store in shards: contiguous runs of the corpus's context stream, mined apart (by other
processes or machines) and merged exactly into the store (`MiningState.merge`: top-k by value, ties to
the smaller context id, so the merge is associative and a store mined in shards equals one pass).

A shard is an ordinary activation store over a slice of the context stream, kept under the store's
folder (`shards/`), so mining a shard resumes per segment like any store. Shards start on segment
boundaries, so the merged store holds the same segments (and the same forward-pass batches) as one
process mining the same contexts. The orchestration (which worker mines which shard) lives in
`sage.distributed.mining`; this module needs no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sage.data.corpus import Corpus
from sage.io import cache_key
from sage.model.engine_config import ENGINE
from sage.model.subject import Subject
from sage.store.activation_store import ActivationStore, StoreConfig, load_state
from sage.store.mining import MiningState

#: segments per shard when the corpus's length is unknown (no token budget): ~1M tokens at 64-token
#: contexts, few enough re-dispatches, small enough that a lost worker costs little
SHARD_SEGMENTS = 16


class ContextCursor:
    """A corpus's context stream, read forward: `take(start, stop)` continues where the previous take
    stopped, so a worker that mines shards in increasing order tokenises the corpus once (it re-reads
    from the beginning only when asked for earlier contexts)."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self._stream: Iterator[list[int]] | None = None
        self._key: tuple | None = None
        self._pos = 0

    def take(self, tokenizer, sink_id: int, context_len: int, start: int, stop: int) -> Iterator[list[int]]:
        """Contexts [start, stop) of the stream (fewer when the corpus ends first)."""
        key = (id(tokenizer), sink_id, context_len)
        if self._stream is None or key != self._key or start < self._pos:
            self._stream, self._key, self._pos = self.corpus.contexts(tokenizer, sink_id, context_len), key, 0
        while self._pos < start:
            if next(self._stream, None) is None:
                return
            self._pos += 1
        while self._pos < stop:
            ctx = next(self._stream, None)
            if ctx is None:
                return
            self._pos += 1
            yield ctx

    def slice(self, start: int, stop: int) -> Corpus:
        """A corpus whose context stream is contexts [start, stop) of this one (its own fingerprint, so
        its store lives in its own folder)."""
        c = self.corpus
        fp = cache_key(c.fingerprint, start, stop)
        return CorpusSlice(c.name, fp, c._docs, cursor=self, start=start, stop=stop)


@dataclass(frozen=True)
class CorpusSlice(Corpus):
    """Contexts [start, stop) of a corpus's context stream, read through a shared `ContextCursor`."""

    cursor: ContextCursor | None = field(default=None, compare=False, repr=False)
    start: int = 0
    stop: int = 0

    def contexts(self, tokenizer, sink_id: int, context_len: int) -> Iterator[list[int]]:
        return self.cursor.take(tokenizer, sink_id, context_len, self.start, self.stop)


@dataclass(frozen=True)
class ShardPlan:
    """Which contexts the shards cover: shard i is contexts [first + i * size, first + (i + 1) * size),
    up to `end` (None: until the corpus ends). All in contexts; `first` and `size` are whole segments."""

    first: int
    size: int
    end: int | None

    def ranges(self) -> Iterator[tuple[int, int]]:
        start = self.first
        while self.end is None or start < self.end:
            stop = start + self.size if self.end is None else min(start + self.size, self.end)
            yield start, stop
            start = stop


def plan_shards(
    store: ActivationStore, max_tokens: int | None, workers: int, shard_segments: int = SHARD_SEGMENTS
) -> ShardPlan | None:
    """The shards that take `store` to `max_tokens` tokens (None: the whole corpus), continuing what it
    holds, as one process mining segment by segment would: whole segments until the budget is met.
    None when there is nothing left to mine. A known budget is split evenly over `workers`; shards
    hold at most `shard_segments` segments."""
    meta = store.meta()
    if meta.get("exhausted"):
        return None
    seg, body = store.cfg.segment_contexts, store.cfg.context_len - ENGINE.skip_positions
    first = meta.get("contexts", 0)
    if first % seg:
        raise ValueError(f"{store.dir} holds {first} contexts, not whole segments of {seg}: cannot shard it")
    if max_tokens is None:
        return ShardPlan(first, shard_segments * seg, None)
    if meta.get("tokens", 0) >= max_tokens:
        return None
    end = math.ceil(max_tokens / (seg * body)) * seg
    per_worker = math.ceil((end - first) / seg / max(workers, 1))
    return ShardPlan(first, min(per_worker, shard_segments) * seg, end)


def shards_root(store: ActivationStore) -> Path:
    return store.dir / "shards"


@dataclass(frozen=True)
class Shard:
    """What a mined shard holds, its context ids counted from its own first context.

    state: its statistics; segments: its segments' tensors (token_ids, ctx, feat, max), in order;
    contexts: how many contexts it mined; short: the corpus ended inside it; meta: its `meta.json`
    (what was mined: model, SAE, hook, corpus, context length, top-k, width)."""

    start: int
    state: MiningState
    segments: list[dict[str, torch.Tensor]]
    contexts: int
    short: bool
    meta: dict


def mine_shard(
    subject: Subject, cursor: ContextCursor, cfg: StoreConfig, root: Path, start: int, stop: int
) -> Shard:
    """Mine contexts [start, stop) into their own store under `root` (resuming what is saved there)."""
    shard = ActivationStore(subject, cursor.slice(start, stop), cfg, root=root)
    shard.mine(None, progress=False)
    return read_shard(shard, start, stop)


def read_shard(shard: ActivationStore, start: int, stop: int) -> Shard:
    meta = shard.meta()
    state = load_state(shard.dir)
    segments = shard.saved_segments()
    return Shard(start, state, segments, meta["contexts"], meta["contexts"] < stop - start, meta)


class ShardMerger:
    """Merges shards into a store: segments are written as shards arrive (in any order), the statistics
    and `meta.json` (which says how many segments count) once every shard is in (`commit`)."""

    def __init__(self, store: ActivationStore):
        self.store = store
        store.dir.mkdir(parents=True, exist_ok=True)
        self.meta = store.meta()
        cfg = store.cfg
        self.state = (
            load_state(store.dir)
            if self.meta.get("contexts")
            else MiningState.empty(store.subject.d_sae, cfg.top_k, cfg.context_len)
        )
        self.first = self.meta.get("contexts", 0)
        self.shards: list[tuple[int, int, bool]] = []  # (start, contexts, short) of each shard merged

    def add(self, shard: Shard) -> None:
        seg = self.store.cfg.segment_contexts
        if shard.start % seg or shard.start < self.first:
            raise ValueError(f"a shard starting at context {shard.start} does not fit this store")
        for j, s in enumerate(shard.segments):  # context ids move from the shard's own to the store's
            self.store._save_segment(
                shard.start // seg + j, s["token_ids"], s["ctx"] + shard.start, s["feat"], s["max"]
            )
        self.state = self.state.merge(shifted(shard.state, shard.start))
        self.shards.append((shard.start, shard.contexts, shard.short))
        if not self.meta:  # a new store: what was mined, as the shards' meta says
            self.meta = {k: v for k, v in shard.meta.items() if k not in ("contexts", "tokens", "segments")}

    def commit(self) -> dict:
        """Write the merged statistics and meta (after checking the shards tile the contexts from the
        store's first new one without a gap); returns the meta."""
        pos, exhausted = self.first, False
        for start, n, short in sorted(self.shards):
            if exhausted:
                if n:
                    raise ValueError(f"a shard at context {start} holds contexts after the corpus ended")
                continue
            if start != pos:
                raise ValueError(f"the shards leave contexts [{pos}, {start}) unmined")
            pos, exhausted = pos + n, short
        seg, body = self.store.cfg.segment_contexts, self.store.cfg.context_len - ENGINE.skip_positions
        meta = dict(self.meta)
        meta.update(contexts=pos, tokens=pos * body, segments=math.ceil(pos / seg), exhausted=exhausted)
        self.store._save(meta, self.state.tensors())
        self.store._loaded = False
        return meta


def shifted(state: MiningState, offset: int) -> MiningState:
    """`state` with its context ids moved by `offset` (a shard counts its contexts from 0)."""
    ids = torch.where(state.top_ids >= 0, state.top_ids + offset, state.top_ids)
    return MiningState(**{**state.tensors(), "top_ids": ids})


def mine_sharded(
    store: ActivationStore,
    max_tokens: int | None,
    workers: int,
    mine_all: Callable[[Iterator[tuple[int, int]]], Iterable[Shard]],
    on_shard: Callable[[Shard], None] | None = None,
    shard_segments: int = SHARD_SEGMENTS,
) -> dict:
    """Take `store` to `max_tokens` tokens (None: the whole corpus) by mining shards and merging them.

    mine_all(ranges) mines the (start, stop) context ranges it pulls from `ranges`, lazily, and yields
    their `Shard`s in any order (one process: `local_miner`; Ray workers: `sage.distributed.mining`).
    `ranges` ends once a shard shows the corpus ended. `on_shard` sees each shard as it is merged.
    Returns the store's new meta.
    """
    plan = plan_shards(store, max_tokens, workers, shard_segments)
    if plan is None:
        return store.meta()
    merger = ShardMerger(store)
    ended = False

    def ranges() -> Iterator[tuple[int, int]]:
        for r in plan.ranges():
            if ended:
                return
            yield r

    for shard in mine_all(ranges()):
        merger.add(shard)
        ended = ended or shard.short
        if on_shard is not None:
            on_shard(shard)
    return merger.commit()


def local_miner(subject: Subject, corpus: Corpus, cfg: StoreConfig, root: Path):
    """`mine_all` for `mine_sharded` in this process, one shard after the other (tests, and the
    reference the distributed miner is held to)."""
    cursor = ContextCursor(corpus)

    def mine_all(ranges: Iterator[tuple[int, int]]) -> Iterator[Shard]:
        for start, stop in ranges:
            yield mine_shard(subject, cursor, cfg, root, start, stop)

    return mine_all
