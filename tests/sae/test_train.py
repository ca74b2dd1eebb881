"""SAE training plumbing on tiny data (sae-lens trainer, resume) and the evaluation arithmetic."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from sage.errors import ConfigError
from sage.sae.evaluate_math import ReconstructionTally, ce_loss_score, evenly_spaced
from sage.sae.train import ShardBatches, TrainSaeConfig, train_sae


def test_reconstruction_tally_perfect_and_zero():
    x = torch.randn(50, 8)
    t = ReconstructionTally(d_sae=4)
    t.add(x, x, torch.tensor([[1.0, 0, 0, 0]] * 50))
    assert t.fve() == pytest.approx(1.0) and t.l0() == 1.0 and t.dead_fraction() == 0.75
    t2 = ReconstructionTally(d_sae=4)
    t2.add(x, x.mean(0, keepdim=True).expand_as(x), torch.zeros(50, 4))
    assert t2.fve() == pytest.approx(0.0, abs=1e-9) and t2.dead_fraction() == 1.0


def test_ce_loss_score():
    assert ce_loss_score(2.0, 2.0, 6.0) == 1.0
    assert ce_loss_score(2.0, 6.0, 6.0) == 0.0
    assert ce_loss_score(2.0, 3.0, 6.0) == pytest.approx(0.75)


def _shards(folder, n_shards=3, rows=512, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    (folder / "acts").mkdir(parents=True)
    basis = torch.randn(32, d, generator=g)
    for i in range(n_shards):
        codes = torch.relu(torch.randn(rows, 32, generator=g) - 1.0)
        save_file(
            {"acts": (codes @ basis).to(torch.bfloat16)}, str(folder / "acts" / f"shard_{i:05d}.safetensors")
        )


def test_shard_batches_resume_is_exact(tmp_path):
    _shards(tmp_path)
    full = [b for _, b in zip(range(8), ShardBatches(tmp_path / "acts", 128, seed=1, mixing_shards=2))]
    later = [
        b
        for _, b in zip(
            range(3), ShardBatches(tmp_path / "acts", 128, seed=1, mixing_shards=2, start_sample=5 * 128)
        )
    ]
    for a, b in zip(full[5:], later):
        torch.testing.assert_close(a, b)


def test_train_saves_sae_lens_format_and_resumes(tmp_path):
    from sae_lens import SAE

    _shards(tmp_path)
    cfg = TrainSaeConfig(
        layer=1,
        d_sae=32,
        k=4,
        training_tokens=1536,
        contexts_per_shard=4,
        context_len=129,
        batch_size_tokens=128,
        n_checkpoints=2,
        lr=1e-3,
    )
    out = train_sae(cfg, tmp_path, tmp_path / "out", device="cpu")
    sae = SAE.load_from_disk(out)
    meta = sae.cfg.metadata
    assert meta.hook_name == "blocks.1.hook_resid_post" and meta.hf_hook_name == "model.layers.1"
    assert sae.cfg.d_in == 16 and sae.cfg.d_sae == 32 and sae.cfg.architecture() == "topk"
    assert (out / "sparsity.safetensors").exists()
    assert json.loads((out / "cfg.json").read_text())["dtype"] == "float16"
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts, "checkpoints are written during training"
    # a re-run resumes from the last checkpoint rather than starting over
    out2 = train_sae(cfg, tmp_path, tmp_path / "out2", device="cpu")
    assert SAE.load_from_disk(out2).cfg.d_sae == 32
    # ... but never continues a run with other settings: its LR schedule and optimizer belong to that run
    with pytest.raises(ConfigError, match="training_tokens: 1536 there, 3072 now"):
        train_sae(replace(cfg, training_tokens=3072), tmp_path, tmp_path / "out3", device="cpu")


def test_evenly_spaced_covers_the_whole_stream():
    idx = evenly_spaced(1000, 10)
    assert idx == sorted(set(idx)) and len(idx) == 10
    assert idx[0] == 0 and idx[-1] >= 900  # reaches the last sources, not just the first
    assert evenly_spaced(5, 10) == [0, 1, 2, 3, 4]


def test_evaluate_sae_reads_the_hook_from_the_clean_forward(tiny_subject):
    """The fused evaluation must see the same activations as the early-exit engine and the model's own CE."""
    import torch.nn.functional as F

    from sage.model.engine import ActivationEngine
    from sage.sae.evaluate import evaluate_sae
    from sage.sae.evaluate_math import ReconstructionTally

    torch.manual_seed(0)
    ids = torch.randint(5, tiny_subject.model.config.vocab_size, (6, 20))
    ids[:, 0] = tiny_subject.sink_id
    ids_dev = ids.to(tiny_subject.device)
    fused = evaluate_sae(tiny_subject, ids.tolist(), batch_size=4, max_norm_ratio=None)
    plain = evaluate_sae(tiny_subject, ids.tolist(), batch_size=4, with_ce=False, max_norm_ratio=None)
    assert fused["fve"] == pytest.approx(plain["fve"], abs=1e-4) and fused["l0"] == plain["l0"]

    h = ActivationEngine(tiny_subject).hidden(ids_dev)[:, 1:].reshape(-1, tiny_subject.sae.cfg.d_in).float()
    tally = ReconstructionTally(tiny_subject.d_sae)
    with torch.no_grad():
        codes = tiny_subject.sae.encode(h)
        tally.add(h, tiny_subject.sae.decode(codes), codes)
    assert fused["fve"] == pytest.approx(tally.fve(), abs=1e-4) and fused["tokens"] == 6 * 19

    with torch.no_grad():
        logits = tiny_subject.model(input_ids=ids_dev).logits[:, 1:-1].float()
    clean = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids_dev[:, 2:].reshape(-1))
    assert fused["ce_clean"] == pytest.approx(float(clean), abs=1e-3)
    assert fused["ce_clean"] != fused["ce_spliced"] and fused["ce_zero_ablation"] != fused["ce_clean"]


def test_cache_activations_reads_the_given_corpus(tmp_path, tiny_model_dir):
    """`sage train-sae --corpus FILE`: the cached activations are the model's on that file's text."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sage.data.corpus import load_corpus
    from sage.model.capture import HookCapture
    from sage.model.hooks import resolve_hook
    from sage.model.subject import sink_token_id
    from sage.sae.train import cache_activations
    from sage.testing import write_corpus

    text = write_corpus(tmp_path / "mine.txt")
    cfg = TrainSaeConfig(
        model=str(tiny_model_dir),
        corpus=str(text),
        layer=1,
        context_len=9,
        contexts_per_shard=4,
        training_tokens=64,
        dtype="float32",
    )
    shard = cache_activations(cfg, tmp_path / "work", "cpu") / "shard_00000.safetensors"
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ctxs = list(load_corpus(str(text)).contexts(tok, sink_token_id(tok), 9))[:4]
    h = HookCapture(model, resolve_hook(model, cfg.hook_name))(torch.tensor(ctxs))[:, 1:]
    want = h.reshape(-1, h.shape[-1]).to(torch.bfloat16).float()
    torch.testing.assert_close(load_file(str(shard))["acts"].float(), want)
