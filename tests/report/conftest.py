"""A real (tiny) run to report on: the fixture model + SAE, a mined tiny store, three features
explained by the offline explainer, and the site `sage report` writes for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage.intervention.edits import GenerationConfig, SteerSpec, steer, sweep
from sage.llm.offline import OfflineExplainer
from sage.report.inputs import ReportInputs, read_results
from sage.report.site import write_site
from sage.report.store_data import store_feature, vocab_words
from sage.runs import Session, explain_batch
from tests.agent_support import agent_store, live_features  # noqa: F401 (the `store` fixture)

N = 3


@pytest.fixture(scope="module")
def results(store, tmp_path_factory):
    """The results JSONL of a batch of N live features, explained with 2 rounds."""
    out = tmp_path_factory.mktemp("run") / "r.jsonl"
    session = Session(store.subject, store, OfflineExplainer(), "tiny")
    explain_batch(live_features(store, N), out, session=session, progress=False, max_rounds=2)
    return out


@pytest.fixture(scope="module")
def site(store, results, tmp_path_factory):
    """The site of that batch, with a steering output and score records beside it."""
    recs = read_results(results)
    f0 = next(iter(recs))
    # real steering runs of the tiny subject, as `sage steer --json` (and `--sweep`) print them
    spec = SteerSpec((f0,), "add", 4.0, (store.feature_stats(f0).max_activation,))
    gen = GenerationConfig(max_new_tokens=6)
    runs = [
        steer(store.subject, "The cat", spec, gen).to_dict(),
        sweep(store.subject, "The cat", spec, [2, 8], gen).to_dict(),
    ]
    scores = {
        f: {
            "r": {
                "feature": f,
                "method": "r",
                "scorer": "offline",
                "metrics": {"detection_accuracy": 0.5 + f / 1000},
            }
        }
        for f in recs
    }
    inputs = ReportInputs(recs, scores=scores, steering={f0: runs})
    out = tmp_path_factory.mktemp("site")
    write_site(inputs, out, lambda f: (store_feature(store, f), vocab_words(store.subject, f)), method="r")
    return SiteDir(out, runs)


class SiteDir(type(Path())):
    """The site's folder, carrying the steering runs shown in it."""

    def __new__(cls, path, runs):
        self = super().__new__(cls, path)
        self.steering_runs = runs
        return self


def load(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
