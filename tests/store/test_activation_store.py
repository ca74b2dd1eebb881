"""Activation store: top-k equals brute force; interruption and resume lose nothing; extension."""

import pytest
import torch

from sage.model.engine import ActivationEngine
from sage.store.activation_store import ActivationStore, StoreConfig

CFG = StoreConfig(context_len=12, top_k=4, segment_contexts=6)


def brute_force(subject, corpus, feature):
    ctxs = list(corpus.contexts(subject.tokenizer, subject.sink_id, CFG.context_len))
    acts = ActivationEngine(subject).feature_acts(torch.tensor(ctxs), None, [feature])[..., 0].cpu()
    acts[:, 0] = 0
    return acts.max(dim=1).values, acts


def test_top_k_equals_brute_force(tiny_subject, corpus, tmp_path):
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "s")
    store.mine(progress=False)
    for f in (0, 5, 77):
        maxima, acts = brute_force(tiny_subject, corpus, f)
        want = torch.sort(maxima[maxima > 0], descending=True).values[: CFG.top_k]
        got = store.top(f, CFG.top_k)
        assert [round(c.max_act, 2) for c in got] == [round(float(v), 2) for v in want]
        for c in got:  # stored per-token activations match a fresh computation
            torch.testing.assert_close(torch.tensor(c.acts), acts[c.context_id], atol=2e-3, rtol=2e-3)
        stats = store.feature_stats(f)
        assert stats.max_activation == pytest.approx(float(maxima.max()), rel=1e-4)
        assert stats.frequency == pytest.approx(float((acts[:, 1:] > 0).float().mean()), rel=1e-4)


def test_resume_after_interruption_loses_nothing(tiny_subject, corpus, tmp_path):
    whole = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "a")
    whole.mine(progress=False)
    part = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "b")
    part.mine(max_tokens=3 * CFG.segment_contexts * (CFG.context_len - 1), progress=False)  # "interrupted"
    assert not part.status()["complete"]
    resumed = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "b")
    resumed.mine(progress=False)
    assert resumed.status()["contexts"] == whole.status()["contexts"]
    for f in range(0, 128, 9):
        assert [c.context_id for c in resumed.top(f)] == [c.context_id for c in whole.top(f)]
        assert resumed.feature_stats(f) == whole.feature_stats(f)


def test_quantiles_negatives_and_search(tiny_subject, corpus, tmp_path):
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "q")
    store.mine(progress=False)
    f = max(range(128), key=lambda i: store.feature_stats(i).frequency)
    samples = store.quantile_samples(f, n_quantiles=3, per_quantile=2)
    assert samples and all(c.max_act > 0 and c.quantile in (0, 1, 2) for c in samples)
    top_ids = {c.context_id for c in store.top(f, 2)}
    assert not top_ids & {c.context_id for c in store.quantile_samples(f, exclude_top=2)}
    for c in store.random_negatives(f, 3):
        assert c.max_act == 0
    cat = tiny_subject.tokenizer(" cat", add_special_tokens=False).input_ids
    for cid in store.search(cat):
        assert set(cat) & set(store._tokens[cid].tolist()[1:])
