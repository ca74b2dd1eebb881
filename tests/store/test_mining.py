"""Device-side sparse mining equals the dense implementation it replaced, and shards merge exactly."""

import pytest
import torch

from sage.model.engine import ActivationEngine
from sage.store.activation_store import ActivationStore, load_state
from sage.store.mining import MiningState
from tests.store.test_activation_store import CFG


def dense_reference(subject, contexts, k):
    """The store's mining loop before issue 14: dense [B, T, F] activations copied to the host, a
    top-k merge over every feature's [K + B, T] per-token activations each batch."""
    engine = ActivationEngine(subject)
    F, T = subject.d_sae, len(contexts[0])
    top_vals, top_ids = torch.full((F, k), float("-inf")), torch.full((F, k), -1, dtype=torch.long)
    top_acts = torch.zeros((F, k, T))
    fire, total, mx = torch.zeros(F, dtype=torch.float64), torch.zeros(F, dtype=torch.float64), torch.zeros(F)
    maxima = []
    for start in range(0, len(contexts), engine.batch_size):
        ids = torch.tensor(contexts[start : start + engine.batch_size])
        acts = engine.feature_acts(ids).cpu()
        acts[:, :1] = 0.0
        bmax = acts.max(dim=1).values
        cids = torch.arange(start, start + len(ids))
        vals = torch.cat([top_vals, bmax.T], dim=1)
        new_vals, idx = torch.topk(vals, k, dim=1, sorted=True)
        top_ids = torch.cat([top_ids, cids.expand(F, -1)], dim=1).gather(1, idx)
        both = torch.cat([top_acts, acts.permute(2, 0, 1)], dim=1)
        top_acts, top_vals = both.gather(1, idx.unsqueeze(-1).expand(-1, -1, T)), new_vals
        fire += (acts > 0).sum(dim=(0, 1)).double()
        total += acts.sum(dim=(0, 1)).double()
        mx = torch.maximum(mx, bmax.max(dim=0).values)
        nz = torch.nonzero(bmax > 0)
        maxima += [(int(cids[b]), int(f), float(bmax[b, f])) for b, f in nz]
    return top_vals, top_ids, top_acts, fire, total, mx, sorted(maxima)


def all_acts(subject, contexts):
    """[N, T, F] dense activations of every context (sink zeroed)."""
    acts = ActivationEngine(subject).feature_acts(torch.tensor(contexts)).cpu()
    acts[:, :1] = 0.0
    return acts


def mine_sparse(subject, contexts, k, chunks=1):
    """MiningState over `contexts`, mined as `chunks` shards merged at the end."""
    engine = ActivationEngine(subject)
    T, maxima, shards = len(contexts[0]), [], []
    bounds = [round(i * len(contexts) / chunks) for i in range(chunks + 1)]
    for lo, hi in zip(bounds, bounds[1:]):
        state = MiningState.empty(subject.d_sae, k, T, subject.device)
        for start in range(lo, hi, 5):  # batches that straddle nothing in particular
            ids = torch.tensor(contexts[start : min(start + 5, hi)])
            acts, _ = engine.sparse_acts(ids)
            c, f, m = state.update(acts, torch.arange(start, start + len(ids), device=subject.device))
            maxima += list(zip(c.tolist(), f.tolist(), m.tolist()))
        shards.append(state)
    merged = shards[0]
    for s in shards[1:]:
        merged = merged.merge(s)
    return merged.sorted().to("cpu"), sorted(maxima)


def assert_same_mining(state, ref, acts, acts_dtype=torch.float32, tol=None):
    """Same top values; each kept context really has that maximum and its stored per-token values
    (contexts tied at the same maximum may be kept in another order, or swapped at the k-th slot)."""
    top_vals, top_ids, top_acts, fire, total, mx, _ = ref
    close = {} if tol is None else {"atol": tol, "rtol": tol}
    live = top_vals > 0
    assert torch.equal(state.top_vals > 0, live)
    torch.testing.assert_close(state.top_vals[live], top_vals[live], **close)
    f, j = torch.nonzero(live, as_tuple=True)
    ids = state.top_ids[f, j]
    torch.testing.assert_close(acts[ids, :, f].amax(dim=1), state.top_vals[f, j], **close)
    torch.testing.assert_close(state.top_acts[f, j], acts[ids, :, f].to(acts_dtype).float(), **close)
    torch.testing.assert_close(state.fire_count, fire)
    torch.testing.assert_close(state.act_sum, total, **close)
    torch.testing.assert_close(state.max_act, mx, **close)


@pytest.mark.parametrize("chunks", [1, 3])
def test_sparse_mining_equals_the_dense_implementation(tiny_subject, corpus, chunks):
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    ref = dense_reference(tiny_subject, contexts, CFG.top_k)
    state, maxima = mine_sparse(tiny_subject, contexts, CFG.top_k, chunks)
    assert_same_mining(state, ref, all_acts(tiny_subject, contexts))
    assert [(c, f) for c, f, _ in maxima] == [(c, f) for c, f, _ in ref[-1]]
    torch.testing.assert_close(torch.tensor([m for *_, m in maxima]), torch.tensor([m for *_, m in ref[-1]]))


def test_merge_is_associative(tiny_subject, corpus):
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    engine, T = ActivationEngine(tiny_subject), CFG.context_len
    parts = []
    for lo in range(0, len(contexts), 7):
        s = MiningState.empty(tiny_subject.d_sae, CFG.top_k, T, tiny_subject.device)
        acts, _ = engine.sparse_acts(torch.tensor(contexts[lo : lo + 7]))
        s.update(acts, torch.arange(lo, lo + len(acts.values), device=tiny_subject.device))
        parts.append(s)
    a, b, c = parts[:3]
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    for name, x in left.tensors().items():
        torch.testing.assert_close(x, right.tensors()[name], msg=name)


def test_store_mines_what_the_dense_implementation_mined(tiny_subject, corpus, tmp_path):
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "s")
    store.mine(progress=False)
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    ref = dense_reference(tiny_subject, contexts, CFG.top_k)

    state = load_state(store.dir)
    # the store keeps per-token values in fp16
    assert_same_mining(state, ref, all_acts(tiny_subject, contexts), torch.float16)
    for f in range(0, tiny_subject.d_sae, 11):
        cids, maxima = store.firing_contexts(f)
        want = [(c, m) for c, g, m in ref[-1] if g == f]
        assert cids.tolist() == [c for c, _ in want]
        torch.testing.assert_close(maxima, torch.tensor([m for _, m in want]).half().float())


def test_shards_merged_equal_one_pass_exactly(tiny_subject, corpus):
    """Ties go to the smaller context id in both the batch merge and the shard merge."""
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    one, _ = mine_sparse(tiny_subject, contexts, CFG.top_k, 1)
    three, _ = mine_sparse(tiny_subject, contexts, CFG.top_k, 3)
    for name, x in one.tensors().items():
        torch.testing.assert_close(x, three.tensors()[name], msg=name)


def test_a_compiled_forward_mines_what_the_eager_one_mines(tiny_subject, corpus, tmp_path, monkeypatch):
    import sage.model.compiled as compiled

    monkeypatch.setattr(compiled, "COMPILE_AFTER", 1)  # the fixture corpus is short: compile at batch 2
    ran, real = [], torch.compile

    def counting(fn, **kw):
        twin = real(fn, **kw)

        def run(*a, **k):
            ran.append(1)
            return twin(*a, **k)

        return run

    monkeypatch.setattr(torch, "compile", counting)
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "s")
    store.mine(progress=False, compile=True)
    assert ran, "no batch ran the compiled blocks"
    blocks = compiled.compiled_layers(tiny_subject.model, tiny_subject.site)
    assert all("forward" not in b.__dict__ for b in blocks)  # the eager forwards are back
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    ref = dense_reference(tiny_subject, contexts, CFG.top_k)
    assert_same_mining(load_state(store.dir), ref, all_acts(tiny_subject, contexts), torch.float16, tol=2e-3)


def test_mining_goes_on_eagerly_when_compiling_fails(tiny_subject, corpus, tmp_path, monkeypatch, capsys):
    import sage.model.compiled as compiled

    def broken(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(compiled, "COMPILE_AFTER", 1)
    monkeypatch.setattr(torch, "compile", broken)
    store = ActivationStore(tiny_subject, corpus, CFG, root=tmp_path / "s")
    store.mine(progress=False, compile=True)
    assert "torch.compile failed, running eagerly" in capsys.readouterr().err
    contexts = list(corpus.contexts(tiny_subject.tokenizer, tiny_subject.sink_id, CFG.context_len))
    ref = dense_reference(tiny_subject, contexts, CFG.top_k)
    assert_same_mining(load_state(store.dir), ref, all_acts(tiny_subject, contexts), torch.float16)
