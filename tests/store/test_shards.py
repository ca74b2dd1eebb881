"""Mining in shards: the merge is associative and commutative, and a store mined in shards equals one
mined in a single pass (the same contexts, statistics, segments and quantile data)."""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from sage.data.corpus import from_paths
from sage.store.activation_store import ActivationStore, StoreConfig
from sage.store.merge import MinedState, merge, shift_ids
from sage.store.shards import (
    ContextCursor,
    local_miner,
    mine_shard,
    mine_sharded,
    shards_root,
)
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
    segs = [load_file(str(store.dir / f"segment_{i:05d}.safetensors")) for i in range(meta["segments"])]
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


def shards_of(subject, corpus, tmp_path, ranges) -> list[MinedState]:
    cursor, root = ContextCursor(corpus), tmp_path / "parts"
    return [shift_ids(mine_shard(subject, cursor, CFG, root, a, b).state, a) for a, b in ranges]


def assert_equal_states(x: MinedState, y: MinedState) -> None:
    for k, v in x.tensors().items():
        if k == "act_sum":  # float64 sums added in another order
            torch.testing.assert_close(v, y.act_sum, rtol=1e-12, atol=0)
        else:
            assert torch.equal(v, getattr(y, k)), k


def test_merge_is_associative_and_commutative_with_empty_as_identity(tiny_subject, corpus, tmp_path):
    a, b, c = shards_of(tiny_subject, corpus, tmp_path, [(0, 8), (8, 24), (24, 40)])
    assert_equal_states(merge(merge(a, b), c), merge(a, merge(b, c)))
    assert_equal_states(merge(a, b), merge(b, a))
    assert_equal_states(merge(merge(c, a), b), merge(a, merge(b, c)))
    empty = MinedState.empty(tiny_subject.d_sae, CFG.top_k, CFG.context_len)
    assert_equal_states(merge(empty, a), a)
    assert_equal_states(merge(a, empty), a)


def test_merge_keeps_the_best_contexts_and_breaks_ties_by_context_id():
    def state(vals, ids):
        v = torch.tensor([vals], dtype=torch.float32)
        acts = v.unsqueeze(-1).expand(-1, -1, 2).to(torch.float16)
        one = torch.ones(1, dtype=torch.float64)
        return MinedState(v, torch.tensor([ids]), acts, one, one, v.max(dim=1).values)

    got = merge(state([5.0, 2.0, 2.0], [7, 9, 1]), state([3.0, 2.0, float("-inf")], [4, 0, -1]))
    assert got.top_vals.tolist() == [[5.0, 3.0, 2.0]]
    assert got.top_ids.tolist() == [[7, 4, 0]]  # of the three contexts tied at 2.0, the first one
    assert got.fire_count.tolist() == [2.0] and got.max_act.tolist() == [5.0]
    with pytest.raises(ValueError, match="cannot merge"):
        merge(state([1.0], [0]), state([1.0, 2.0], [1, 2]))


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
