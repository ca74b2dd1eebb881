"""Mining a store in shards, in any order, equals mining it in one pass: the same statistics, segments
(so the same quantile data) and counts, with or without a token budget, and when extending a store.
(The merge of two `MiningState`s itself, associative and tie-stable: tests/store/test_mining.py.)"""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from sage.data.corpus import from_paths
from sage.store.activation_store import ActivationStore, StoreConfig
from sage.store.shards import local_miner, mine_sharded, shards_root
from tests.fixtures import TEXTS

#: two segments of 8 contexts per shard; the engine's batch (32) is larger, so each segment is one batch
CFG = StoreConfig(context_len=12, top_k=4, segment_contexts=8)


def write_corpus(path):
    """Distinct documents, about 70 contexts of CFG.context_len tokens (several shards of 2 segments)."""
    docs = [f"{t} Item {i} of the list." for i, t in enumerate(TEXTS * 3)]
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture()
def corpus(tmp_path):
    return from_paths([write_corpus(tmp_path / "c.txt")])


def contents(store: ActivationStore) -> dict:
    """Everything a store holds: its statistics, its segments' tensors (concatenated) and its counts."""
    meta = store.meta()
    segs = store.saved_segments()
    out = {k: v for k, v in load_file(str(store.dir / "state.safetensors")).items()}
    out.update({f"segment.{k}": torch.cat([s[k] for s in segs]) for k in segs[0]})
    out["meta"] = {k: meta[k] for k in ("contexts", "tokens", "segments", "exhausted", "corpus", "d_sae")}
    return out


def assert_same_store(got: dict, want: dict) -> None:
    assert got["meta"] == want["meta"]
    for k in want:
        if k in ("meta", "act_sum"):
            continue
        assert torch.equal(got[k], want[k]), k
    torch.testing.assert_close(got["act_sum"], want["act_sum"], rtol=1e-12, atol=0)


@pytest.fixture()
def single(tiny_subject, corpus, tmp_path):
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "single")
    store.mine(progress=False)
    return contents(store)


def test_mining_in_shards_in_any_order_equals_one_pass(tiny_subject, corpus, tmp_path, single):
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "sharded")
    mine_all = local_miner(tiny_subject, corpus, CFG, shards_root(store))

    def shuffled(ranges):  # shards finish in any order on workers: mine four ahead, hand them back reversed
        ranges, batch = iter(ranges), []
        for r in ranges:
            batch.append(r)
            if len(batch) == 4:
                yield from reversed(list(mine_all(iter(batch))))
                batch = []
        yield from random.Random(0).sample(list(mine_all(iter(batch))), len(batch))

    seen = []
    meta = mine_sharded(
        store, None, workers=2, mine_all=shuffled, shard_segments=2, on_shard=lambda s: seen.append(s.start)
    )
    n = single["meta"]["contexts"]
    assert n > 3 * 16 and seen != sorted(seen) and set(range(0, n, 16)) <= set(seen)
    assert meta["exhausted"] and meta["contexts"] == single["meta"]["contexts"]
    assert_same_store(contents(store), single)


def test_a_token_budget_and_an_extension_match_one_pass(tiny_subject, corpus, tmp_path):
    budget = 2 * CFG.segment_contexts * (CFG.context_len - 1) + 1  # a little over two segments: three
    one = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "one")
    one.mine(budget, progress=False)
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "sharded")
    mine_all = local_miner(tiny_subject, corpus, CFG, shards_root(store))
    mine_sharded(store, budget, workers=2, mine_all=mine_all)
    assert_same_store(contents(store), contents(one))
    assert not store.meta()["exhausted"] and store.complete(budget)
    # extending to the whole corpus continues from what is there, as one process would
    one.mine(None, progress=False)
    mine_sharded(store, None, workers=2, mine_all=mine_all)
    assert_same_store(contents(store), contents(one))
    assert store.top(3) and [c.context_id for c in store.top(3)] == [c.context_id for c in one.top(3)]
