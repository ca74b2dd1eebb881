"""A Neuronpedia subject through the agent, the CLI, the baselines, export and import (replay server)."""

from __future__ import annotations

import gzip
import json

import pytest

from sage.cli import main
from sage.errors import ConfigError, RemoteError
from sage.evaluation.baselines import run_baseline
from sage.io import read_jsonl
from sage.llm import make_backend
from sage.neuronpedia.interop import export_neuronpedia, import_neuronpedia, pick_explanation
from sage.neuronpedia.source import open_source
from sage.runs import Session, explain
from tests.neuronpedia.test_api import FIXTURE_4213, MODEL, SOURCE, SPEC, client
from tests.neuronpedia_replay import Fault, serve


@pytest.fixture()
def env(sage_home, monkeypatch):
    monkeypatch.delenv("NEURONPEDIA_API_KEY", raising=False)
    with serve() as srv:
        monkeypatch.setenv("SAGE_NEURONPEDIA_URL", srv.url)
        yield srv


def session_of(srv, tmp_path) -> Session:
    store = open_source(SPEC, client(srv, tmp_path))
    return Session(store.subject, store, make_backend("offline"), store.corpus_name)


def test_explain_end_to_end_every_activation_from_the_server(env, capsys):
    code = main(["explain", "--subject", SPEC, "--feature", "4213", "--explainer", "offline", "--json"])
    assert code == 0
    expl = json.loads(capsys.readouterr().out)
    assert (
        expl["feature"]["sae"] == SPEC and expl["feature"]["max_activation"] == FIXTURE_4213["maxActApprox"]
    )
    assert any("dog" in label for label in expl["labels"])
    # every probe's activation is the maximum of what the server answered for that text
    weights = env.rules["weights"]["4213"]
    sent = {t for m, _, b in env.requests if m == "POST" for t in b["customText"]}
    assert expl["evidence"]
    for e in expl["evidence"]:
        assert e["text"] in sent
        assert e["max_activation"] == pytest.approx(max(env.activation("4213", weights, e["text"])["values"]))


def test_an_api_outage_fails_clearly_and_the_run_resumes(env, tmp_path):
    db = tmp_path / "ckpt.sqlite"

    def down(method, path, n):  # probes of new texts fail; the seed's fixture contexts still answer
        if method == "POST":
            texts = env.requests[n][2]["customText"]
            if any(("4213", t) not in env.known for t in texts):
                return Fault(503)
        return None

    env.script = down
    with pytest.raises(RemoteError, match="gave up after 3 attempts.*resume"):
        explain(4213, session=session_of(env, tmp_path), checkpoint_db=db)
    env.script = []
    before = len(env.requests)
    expl = explain(4213, session=session_of(env, tmp_path), checkpoint_db=db, resume=True)
    assert expl.data["evidence"] and expl.data["cost"]["probes"] > 0
    # the resumed run asked only for the probes: the feature records came from the disk cache
    assert all(m == "POST" for m, _, _ in env.requests[before:])


def test_top_and_activations_commands(env, capsys):
    assert main(["top", "--subject", SPEC, "--feature", "4213", "--k", "2", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert [c["activations"] for c in top["contexts"]] == [
        a["values"] for a in FIXTURE_4213["activations"][:2]
    ]
    assert top["frequency"] == FIXTURE_4213["frac_nonzero"]
    text = "A beagle met a terrier."
    assert main(["activations", "--subject", SPEC, "--feature", "4213", "--text", text, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hook_name"] == "blocks.20.hook_resid_post" and out["sink_positions"] == [0]
    assert out["tokens"] == ["<bos>", "A", " beagle", " met", " a", " terrier", "."]
    assert out["activations"] == [0.0, 0.0, 7.3, 0.0, 0.0, 6.7, 0.0]


def test_commands_that_need_weights_refuse_a_neuronpedia_subject(env, capsys):
    assert main(["vocab", "--subject", SPEC, "--feature", "4213"]) == 2
    assert "has no local weights" in capsys.readouterr().err


def test_neuronpedia_baseline_takes_its_best_explanation(env, tmp_path):
    out = tmp_path / "np.jsonl"
    run_baseline("neuronpedia", [4213, 4215], out, session_of(env, tmp_path), progress=False)
    by = {r["feature"]["index"]: r for r in read_jsonl(out)}
    assert by[4213]["labels"] == ["references to dogs and puppies"]
    assert by[4213]["references"]["explainer"] == "neuronpedia:gpt-4o-mini"
    assert "no explanation of feature 4215" in by[4215]["error"]


def test_batch_export_import_round_trip(env, tmp_path, capsys):
    results, out, back = tmp_path / "r.jsonl", tmp_path / "export", tmp_path / "back.jsonl"
    base = ["--subject", SPEC]
    assert (
        main(["batch", "--features", "4213,4214", "--explainer", "offline", "--out", str(results), *base])
        == 0
    )
    assert main(["export", "--results", str(results), "--out", str(out), "--contexts", "5", *base]) == 0
    assert main(["import", "--neuronpedia", str(out), "--out", str(back)]) == 0
    capsys.readouterr()
    folder = out / MODEL / SOURCE
    acts = [json.loads(line) for line in (folder / "activations" / "batch-0.jsonl").read_text().splitlines()]
    assert len(acts) == 10 and acts[0]["tokens"][0] == "<bos>" and acts[0]["maxValue"] == 11.2
    orig = {r["feature"]["index"]: r for r in read_jsonl(results)}
    again = {r["feature"]["index"]: r for r in read_jsonl(back)}
    assert sorted(again) == [4213, 4214]
    for f, r in again.items():
        assert (r["labels"], r["description"], r["feature"]) == (
            orig[f]["labels"],
            orig[f]["description"],
            orig[f]["feature"],
        )
        assert r["references"]["explainer"] == "offline"
    assert main(["export", "--results", str(results), "--format", "jsonl", "--out", str(tmp_path / "j")]) == 0
    assert read_jsonl(tmp_path / "j" / "explanations.jsonl") == [orig[4213], orig[4214]]


def neuronpedia_dump(tmp_path, gz: bool = True):
    """A folder in Neuronpedia's dump layout holding the fixture's explanations (two explainers for 4213)."""
    folder = tmp_path / "dump" / MODEL / SOURCE
    (folder / "explanations").mkdir(parents=True)
    (folder / "features").mkdir()
    rows = [
        {**e, "modelId": MODEL, "layer": SOURCE, "index": "4213", "authorId": "x", "embedding": None}
        for e in FIXTURE_4213["explanations"]
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        (folder / "explanations" / "batch-0.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (folder / "explanations" / "batch-0.jsonl").write_text(text)
    neuron = {"modelId": MODEL, "layer": SOURCE, "index": "4213", "maxActApprox": 11.2, "frac_nonzero": 0.08}
    (folder / "features" / "batch-0.jsonl").write_text(json.dumps(neuron) + "\n")
    (folder / "source.jsonl").write_text(json.dumps(FIXTURE_4213["source"]) + "\n")
    return tmp_path / "dump"


def test_import_reads_neuronpedia_dumps(tmp_path):
    dump = neuronpedia_dump(tmp_path)
    [first] = import_neuronpedia(dump)
    assert first["labels"] == ["references to dogs and puppies"]
    assert first["description"] == "references to dogs and puppies"
    assert first["feature"]["d_sae"] == 16384 and first["feature"]["sae"] == SPEC
    [other] = import_neuronpedia(dump, explainer="claude-3-5-haiku-20241022")
    assert other["labels"] == ["dog breeds and dog-related words"]
    assert other["concluded_by"] == "neuronpedia (claude-3-5-haiku-20241022)"


def test_import_errors_are_clear(tmp_path):
    dump = neuronpedia_dump(tmp_path, gz=False)
    folder = dump / MODEL / SOURCE
    (folder / "source.jsonl").unlink()
    with pytest.raises(ConfigError, match="does not state the SAE's width.*--d-sae"):
        import_neuronpedia(dump)
    assert import_neuronpedia(dump, d_sae=16384)[0]["feature"]["d_sae"] == 16384
    (folder / "features" / "batch-0.jsonl").write_text("")
    with pytest.raises(ConfigError, match="no features/ record with maxActApprox"):
        import_neuronpedia(dump, d_sae=16384)
    (folder / "explanations" / "batch-0.jsonl").write_text('{"modelId": "gemma-2-2b"}\n')
    with pytest.raises(ConfigError, match="batch-0.jsonl:1 does not match.*'layer' is a required property"):
        import_neuronpedia(dump, d_sae=16384)


def test_export_refuses_mixed_subjects(tmp_path):
    a = {"feature": {"model": "m", "sae": "a", "hook_name": "h", "index": 1}}
    b = {"feature": {"model": "m", "sae": "b", "hook_name": "h", "index": 2}}
    with pytest.raises(ConfigError, match="mix 2 subjects"):
        export_neuronpedia([a, b], tmp_path)


def test_the_papers_explanation_type_is_preferred():
    listed = [
        {"description": "a", "typeName": "np_max-act-logits"},
        {"description": "b", "typeName": "oai_token-act-pair"},
        {"description": "c", "typeName": "oai_token-act-pair"},
    ]
    assert pick_explanation(listed)["description"] == "b"
    assert pick_explanation(listed[:1])["description"] == "a"
    assert pick_explanation([]) is None
