"""`explain_batch`: killed halfway and resumed it redoes no finished feature; failures are recorded
per feature without stopping the batch; concurrent features give the same results as sequential ones."""

from __future__ import annotations

import json
import time

import pytest

from sage.errors import ConfigError, ExplainerError
from sage.llm.offline import OfflineExplainer
from sage.runs import Session, done_features, explain_batch, validate_explanation
from tests.agent_support import agent_store, build_store, live_features  # noqa: F401 (the `store` fixture)

N = 5  # features per batch


class CountingOffline(OfflineExplainer):
    """The offline explainer, counting hypothesize calls (one per feature that reaches the explainer),
    and raising KeyboardInterrupt on the `interrupt_at`-th of them (a Ctrl-C mid-batch)."""

    def __init__(self, interrupt_at: int | None = None):
        super().__init__()
        self.started: list[int] = []
        self.interrupt_at = interrupt_at

    def _call(self, messages, schema, req):
        if req.task == "hypothesize":
            feature = int(messages[-1]["content"].split("Feature ", 1)[1].split()[0])
            self.started.append(feature)
            if len(self.started) == self.interrupt_at:
                raise KeyboardInterrupt
        return super()._call(messages, schema, req)


@pytest.fixture(scope="module")
def features(store):
    return live_features(store, N)


def session(store, backend=None) -> Session:
    return Session(store.subject, store, backend or CountingOffline(), "tiny")


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def done_once(path) -> list[int]:
    """Features with a successful line; fails if any feature has two."""
    done = [r["feature"]["index"] for r in records(path) if "error" not in r]
    assert len(done) == len(set(done)), f"a feature was explained twice: {done}"
    return sorted(done)


@pytest.fixture(scope="module")
def reference(store, features, tmp_path_factory):
    """An uninterrupted sequential batch: feature -> explanation."""
    out = tmp_path_factory.mktemp("ref") / "r.jsonl"
    summary = explain_batch(features, out, session=session(store), progress=False, max_rounds=2)
    assert summary["done"] == N and summary["failed"] == 0
    return {r["feature"]["index"]: r for r in records(out)}


def comparable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "timings"}


def test_every_line_is_a_valid_explanation(reference, features):
    assert sorted(reference) == sorted(features)
    for rec in reference.values():
        validate_explanation(rec)


def test_killed_halfway_then_resume_redoes_no_finished_feature(store, features, reference, tmp_path):
    out, k = tmp_path / "r.jsonl", 3
    first = CountingOffline(interrupt_at=k)  # Ctrl-C while explaining the 3rd feature
    with pytest.raises(KeyboardInterrupt):
        explain_batch(features, out, session=session(store, first), progress=False, max_rounds=2)
    assert first.started == features[:k]  # the interrupt stopped the batch: no later feature was started
    assert done_once(out) == sorted(features[: k - 1])

    again = CountingOffline()
    summary = explain_batch(
        features, out, session=session(store, again), resume=True, progress=False, max_rounds=2
    )
    assert again.started == features[k - 1 :]  # only the unfinished features were explained
    assert summary["skipped"] == k - 1 and summary["done"] == N - k + 1 and summary["failed"] == 0
    assert done_once(out) == sorted(features)
    for rec in records(out):
        assert comparable(rec) == comparable(reference[rec["feature"]["index"]])


def test_a_torn_last_line_is_redone_and_the_file_stays_valid_jsonl(store, features, reference, tmp_path):
    out = tmp_path / "r.jsonl"
    explain_batch(features[:3], out, session=session(store), progress=False, max_rounds=2)
    text = out.read_text(encoding="utf-8")
    last_start = text.rstrip("\n").rfind("\n") + 1
    out.write_text(text[: last_start + 40], encoding="utf-8")  # killed while writing the 3rd line
    torn = json.loads(text[last_start:])["feature"]["index"]
    assert done_features(out) == set(features[:3]) - {torn}

    again = CountingOffline()
    summary = explain_batch(
        features, out, session=session(store, again), resume=True, progress=False, max_rounds=2
    )
    assert sorted(again.started) == sorted({torn, *features[3:]})
    assert summary["skipped"] == 2 and summary["done"] == N - 2
    assert done_once(out) == sorted(features)  # every line parses: the torn tail did not corrupt the next one
    for rec in records(out):
        assert comparable(rec) == comparable(reference[rec["feature"]["index"]])


def test_a_failing_feature_is_recorded_and_the_batch_goes_on(store, features, tmp_path, monkeypatch):
    out, bad = tmp_path / "r.jsonl", features[1]
    real = store.feature_stats

    def failing(f):
        if f == bad:
            raise RuntimeError("simulated failure while reading the store")
        return real(f)

    monkeypatch.setattr(store, "feature_stats", failing)
    summary = explain_batch(features, out, session=session(store), progress=False, max_rounds=1)
    assert summary["failed"] == 1 and summary["done"] == N - 1
    errors = [r for r in records(out) if "error" in r]
    assert errors == [
        {"feature": {"index": bad}, "error": "RuntimeError: simulated failure while reading the store"}
    ]
    assert done_once(out) == sorted(set(features) - {bad})

    monkeypatch.setattr(store, "feature_stats", real)  # fixed: resume retries only the failed feature
    again = CountingOffline()
    summary = explain_batch(
        features, out, session=session(store, again), resume=True, progress=False, max_rounds=1
    )
    assert again.started == [bad] and summary["done"] == 1 and summary["failed"] == 0
    assert done_once(out) == sorted(features)


def test_existing_output_without_resume_is_refused(store, features, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="--resume"):
        explain_batch(features, out, session=session(store), progress=False)


def test_out_of_range_feature_is_refused_before_any_work(store, features, tmp_path):
    backend = CountingOffline()
    with pytest.raises(ConfigError, match="out of range"):
        explain_batch(
            [features[0], 10**6], tmp_path / "r.jsonl", session=session(store, backend), progress=False
        )
    assert backend.started == [] and not (tmp_path / "r.jsonl").exists()


def test_concurrent_features_match_sequential_ones(store, features, reference, tmp_path, monkeypatch):
    """Features explained in parallel threads share one model: one forward pass at a time (the hook
    capture is not re-entrant), and each feature gets its own activations."""
    hidden, inside, overlaps = store.engine.hidden, [], []

    def exclusive(*args, **kwargs):  # slow enough that unguarded threads would overlap here
        inside.append(1)
        overlaps.append(len(inside) > 1)
        time.sleep(0.01)
        try:
            return hidden(*args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(store.engine, "hidden", exclusive)
    out = tmp_path / "r.jsonl"
    summary = explain_batch(
        features, out, session=session(store), concurrency=3, progress=False, max_rounds=2
    )
    assert summary["done"] == N and overlaps and not any(overlaps)
    for rec in records(out):
        assert comparable(rec) == comparable(reference[rec["feature"]["index"]])


class FailingOffline(CountingOffline):
    """The offline explainer, whose server is gone for the features in `down`."""

    def __init__(self, down: set[int]):
        super().__init__()
        self.down = down

    def _call(self, messages, schema, req):
        if req.task == "hypothesize":
            feature = int(messages[-1]["content"].split("Feature ", 1)[1].split()[0])
            if feature in self.down:
                raise ExplainerError("openai-compatible:http://127.0.0.1:9/v1:m: cannot reach the server")
        return super()._call(messages, schema, req)


def test_an_explainer_failure_is_a_failed_feature_and_resume_retries_it(store, features, tmp_path):
    out, bad = tmp_path / "r.jsonl", features[2]
    summary = explain_batch(
        features, out, session=session(store, FailingOffline({bad})), progress=False, max_rounds=1
    )
    assert summary["failed"] == 1 and summary["done"] == N - 1
    [failed] = [r for r in records(out) if "error" in r]
    assert failed["feature"] == {"index": bad}
    assert failed["error"] == (
        "explanation failed: openai-compatible:http://127.0.0.1:9/v1:m: cannot reach the server"
    )
    # the failed explanation is kept: it says it failed, and why; it is not called dead
    assert failed["partial"]["labels"] == ["explanation failed"]
    assert failed["partial"]["description"].startswith("explanation failed: openai-compatible:")
    assert failed["partial"]["feature"]["max_activation"] > 0
    validate_explanation(failed["partial"])

    again = CountingOffline()
    summary = explain_batch(
        features, out, session=session(store, again), resume=True, progress=False, max_rounds=1
    )
    assert again.started == [bad] and summary == {**summary, "done": 1, "failed": 0, "skipped": N - 1}
    assert done_once(out) == sorted(features)
