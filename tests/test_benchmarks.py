"""The throughput benchmarks run end to end on the fixture model and print what their readers (the
docs, `benchmarks/gpu_checks.sh`) rely on: --json objects whose ratios are the printed speeds' ratios."""

import json

import pytest

from tests.fixtures import TEXTS


@pytest.fixture()
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(TEXTS * 20))
    return path


def _json_of(main, argv, capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_activations_benchmark_json(tiny_model_dir, tiny_sae_dir, corpus_file, capsys):
    from benchmarks.activations import main

    subject = ["--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--device", "cpu"]
    sizes = ["--corpus", str(corpus_file), "--n-texts", "8", "--max-length", "12", "--batch-size", "4"]
    res = _json_of(main, [*subject, *sizes, "--rounds", "2", "--json"], capsys)
    assert res["tokens"] == 8 * 12 and res["engine_dtype"] == "bfloat16" and res["rounds"] == 2
    assert all(len(v) == 2 for k, v in res["tokens_per_s_each_round"].items() if k != "engine_compiled")
    assert res["engine_tokens_per_s"] == max(res["tokens_per_s_each_round"]["engine"])  # best round
    same = max(
        res["baseline_same_dtype_float32_sae_tokens_per_s"],
        res["baseline_same_dtype_same_dtype_sae_tokens_per_s"],
    )
    assert res["baseline_same_dtype_tokens_per_s"] == same
    assert res["ratio_same_dtype"] == pytest.approx(res["engine_tokens_per_s"] / same, abs=0.01)
    assert res["ratio_fp32"] == pytest.approx(
        res["engine_tokens_per_s"] / res["baseline_fp32_tokens_per_s"], abs=0.01
    )
    for key, baseline in (("float32_sae", "float32_sae"), ("same_dtype_sae", "same_dtype_sae")):
        assert res[f"ratio_same_dtype_{key}"] == pytest.approx(
            res["engine_tokens_per_s"] / res[f"baseline_same_dtype_{baseline}_tokens_per_s"], abs=0.01
        )
    assert res["engine_fraction_of_limit"] == pytest.approx(
        res["engine_tokens_per_s"] / res["limit_tokens_per_s"], abs=0.002
    )
    assert res["baseline_stops_at_hook"] is True
    assert 0 < res["fraction_of_bf16_peak"] < 1.5


def test_mining_benchmark_json(tiny_model_dir, tiny_sae_dir, corpus_file, capsys):
    from benchmarks.mining import main

    subject = ["--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--device", "cpu"]
    argv = [*subject, "--corpus", str(corpus_file), "--tokens", "1000", "--limit-tokens", "600", "--json"]
    res = _json_of(main, argv, capsys)
    assert res["tokens"] >= 1000 and res["device"] == "cpu"
    assert res["ratio"] == pytest.approx(res["mining_tokens_per_s"] / res["limit_tokens_per_s"], rel=0.01)
    assert res["ratio"] > 0 and res["compiled_ratio"] > 0
