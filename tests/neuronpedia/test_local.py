"""Neuronpedia interop on a local subject: the shared interface, export with contexts from a mined
store, and Neuronpedia's imported explanations as a baseline on the local held-out data."""

from __future__ import annotations

import json

from sage.evaluation.baselines import run_baseline
from sage.io import read_jsonl
from sage.llm import make_backend
from sage.neuronpedia.interop import export_neuronpedia, import_neuronpedia, write_records
from sage.runs import Session
from sage.store.source import ActivationSource, SubjectLike
from tests.agent_support import agent_store, live_features  # noqa: F401  (the `store` fixture)


def test_local_store_and_subject_implement_the_shared_interface(store):
    assert isinstance(store, ActivationSource) and isinstance(store.subject, SubjectLike)


def test_local_export_import_and_the_neuronpedia_baseline(store, tmp_path):
    session = Session(store.subject, store, make_backend("offline"), store.corpus.name)
    feats = live_features(store, 2)
    made = tmp_path / "one_shot.jsonl"
    run_baseline("one-shot", feats, made, session, progress=False)
    records = read_jsonl(made)
    summary = export_neuronpedia(records, tmp_path / "np", contexts=lambda f: store.top(f, 3))
    assert summary["features"] == 2 and summary["activations"] == 6
    path = next((tmp_path / "np").rglob("activations/batch-0.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    top = store.top(feats[0], 1)[0]
    assert rows[0]["tokens"] == top.tokens and rows[0]["values"] == [round(a, 5) for a in top.acts]
    assert rows[0]["maxValue"] == round(top.max_act, 5) and rows[0]["maxValueTokenIndex"] == top.max_pos

    back = import_neuronpedia(tmp_path / "np")
    assert [(r["labels"], r["description"], r["feature"]) for r in back] == [
        (r["labels"], r["description"], r["feature"]) for r in records
    ]
    imported = tmp_path / "imported.jsonl"
    write_records(back[:1], imported)
    out = tmp_path / "np_method.jsonl"
    run_baseline("neuronpedia", feats, out, session, progress=False, imported=imported)
    by = {r["feature"]["index"]: r for r in read_jsonl(out)}
    assert by[feats[0]]["labels"] == [records[0]["labels"][0]]
    assert by[feats[0]]["feature"]["sae"] == records[0]["feature"]["sae"]
    assert "no explanation of feature" in by[feats[1]]["error"]
