"""`sage mine --ray`: shards mined by Ray workers and merged equal one process mining the same corpus."""

from __future__ import annotations

from functools import partial

from sage.data.corpus import from_paths
from sage.distributed.cluster import ClusterConfig
from sage.model.subject import load_subject
from sage.store.activation_store import ActivationStore
from sage.store.shards import shards_root
from tests.store.test_shards import CFG, assert_same_store, contents, write_corpus


def test_mining_on_ray_equals_one_pass(ray_local, tiny_subject, tiny_model_dir, tiny_sae_dir, tmp_path):
    from sage.distributed.mining import RayMiners

    path = write_corpus(tmp_path / "c.txt")
    corpus = from_paths([path])
    one = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "one")
    one.mine(progress=False)
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "ray")
    subject = partial(load_subject, str(tiny_model_dir), str(tiny_sae_dir), dtype="float32", device="cpu")
    with RayMiners(subject, partial(from_paths, [path]), ClusterConfig(workers=2)) as miners:
        meta = miners.mine(store, None, progress=False, shard_segments=2)
    assert meta["exhausted"] and meta["contexts"] > 4 * CFG.segment_contexts  # several shards of 2 segments
    assert_same_store(contents(store), contents(one))
    assert not shards_root(store).exists()  # the workers dropped their shards once merged
