"""The whole agent graph end to end with the `offline` explainer on the tiny fixtures."""

from __future__ import annotations

import pytest
import torch

from agents import BudgetConfig, Runtime, build_graph
from agents.graph import recursion_limit
from sage.errors import ConfigError
from sage.llm import make_backend
from sage.model.engine import ActivationEngine
from sage.model.engine_config import ENGINE
from sage.runs import Session, explain, validate_explanation
from tests.agent_support import build_store, live_features
from tests.fixtures import TEST_DEVICE

DEAD = 7  # its encoder bias is set so low that it never fires


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # MI-vocabulary tables are cached under $SAGE_HOME
        mp.setenv("SAGE_HOME", str(tmp_path_factory.mktemp("sage_home")))
        yield


@pytest.fixture(scope="module")
def subject(home, tiny_model_dir, tmp_path_factory):
    from sage.model.subject import load_subject
    from tests.fixtures import build_sae

    out = tmp_path_factory.mktemp("sae_with_dead_feature")
    sae = build_sae(out)
    with torch.no_grad():
        sae.b_enc[DEAD] = -1e4
    sae.save_model(out)
    return load_subject(str(tiny_model_dir), str(out), dtype="float32", device=TEST_DEVICE)


@pytest.fixture(scope="module")
def session(subject, tmp_path_factory):
    store = build_store(subject, tmp_path_factory.mktemp("agent_store"))
    return Session(subject, store, make_backend("offline"), "tiny")


@pytest.fixture(scope="module")
def feature(session):
    return live_features(session.store, 1)[0]


@pytest.fixture(scope="module")
def explanation(session, feature):
    events = []
    e = explain(feature, session=session, max_rounds=3, on_event=events.append)
    return e, events


def test_explanation_is_schema_valid_and_complete(explanation, feature, session):
    e, events = explanation
    data = e.to_dict()
    validate_explanation(data)
    assert e.feature == feature and data["feature"]["d_sae"] == session.subject.d_sae
    assert e.labels and all(label.strip() for label in e.labels)
    assert len(e.description) >= 10
    assert 1 <= data["rounds"] <= 3
    assert data["stop_reason"] in ("max_rounds",) or data["stop_reason"].startswith("converged")
    assert data["concluded_by"] == "offline"
    assert data["cost"]["probes"] == len(data["evidence"]) + data["cost"]["interventions"]
    assert data["cost"]["interventions"] > 0 and data["evidence"]
    assert data["cost"]["input_tokens"] == data["cost"]["output_tokens"] == 0 and data["cost"]["usd"] == 0
    assert data["references"]["explainer"] == "offline" and data["references"]["corpus"] == "tiny"
    assert any(ev.startswith("seed:") for ev in events) and any(ev.startswith("conclusion:") for ev in events)


def test_competing_hypotheses_with_a_control_and_a_history(explanation):
    hyps = explanation[0].to_dict()["hypotheses"]
    assert len(hyps) >= 3
    assert len({h["id"] for h in hyps}) == len(hyps)
    assert any(h["role"] in ("control", "alternative") for h in hyps)
    assert any(h["role"] == "control" for h in hyps)  # the offline explainer always adds a negative control
    for h in hyps:
        assert h["history"] and h["history"][0]["round"] == 0
        assert h["status"] in ("open", "confirmed", "refuted", "refined")
    assert any(len(h["history"]) > 1 for h in hyps)  # analysis updated at least one hypothesis


def test_every_evidence_activation_comes_from_the_model(explanation, session, feature):
    """Nothing invented: each probe's recorded activation equals a fresh engine run on its text."""
    data = explanation[0].to_dict()
    max_act = session.store.feature_stats(feature).max_activation
    assert data["feature"]["max_activation"] == pytest.approx(max_act)
    engine = ActivationEngine(session.subject)
    skip = ENGINE.skip_positions
    texts = [ev["text"] for ev in data["evidence"]]
    assert len(set(texts)) == len(texts)  # no probe run twice
    for ev, fresh in zip(data["evidence"], engine.run(texts, [feature])):
        col = fresh.column(feature)
        pos = skip + int(torch.argmax(col[skip:]))
        assert ev["max_activation"] == pytest.approx(float(col[pos]), abs=2e-5)
        assert ev["normalized"] == pytest.approx(float(col[pos]) / max_act, abs=2e-4)
        assert ev["max_token"] == (fresh.tokens[pos] if col[pos] > 0 else None)  # None: the probe never fired
        assert bool(ev["supports"]) != bool(ev["refutes"])


def test_occurrence_tests_sample_unseen_corpus_contexts_that_hold_their_token(explanation):
    data = explanation[0].to_dict()
    tests = [x for x in data["evidence"] if x["purpose"] == "occurrence"]
    assert tests, "the loop ran no occurrence test"
    for x in tests:
        assert x["source"] == "corpus" and x["token"]
        assert x["token"] in {t.strip().lower() for t in x["tokens"][1:]}  # the context holds its token
    # a probe is never a context the seed showed the explainer (those were chosen for the feature)
    others = {x["text"] for x in data["evidence"] if x["purpose"] != "occurrence"}
    assert not others & {x["text"] for x in tests}


def test_offline_explainer_is_deterministic(explanation, session, feature):
    again = explain(feature, session=session, max_rounds=3).to_dict()
    first = explanation[0].to_dict()
    for key in ("labels", "description", "hypotheses", "evidence", "stop_reason", "rounds"):
        assert again[key] == first[key]


def test_dead_feature_concludes_clearly_without_asking_the_explainer(session):
    assert session.store.feature_stats(DEAD).max_activation == 0
    e = explain(DEAD, session=session, max_rounds=3)
    data = e.to_dict()
    validate_explanation(data)
    assert data["stop_reason"].startswith("dead feature")
    assert e.labels == ["dead feature"] and "never fired" in e.description
    assert data["evidence"] == [] and data["hypotheses"] == [] and data["rounds"] == 0
    assert data["cost"]["llm_calls"] == 0 and data["cost"]["probes"] == 0


@pytest.mark.parametrize("bad", [-1, 128, 10**6])
def test_unknown_feature_is_a_config_error_naming_the_range(session, bad):
    with pytest.raises(ConfigError, match="0-127"):
        explain(bad, session=session)


def test_max_probes_budget_stops_the_custom_graph(session, feature):
    """The graph builder for custom pipelines, with a probe budget smaller than one round."""
    rt = Runtime(
        subject=session.subject,
        store=session.store,
        backend=session.backend,
        budgets=BudgetConfig(max_rounds=5, max_probes=4, probes_per_round=24),
    )
    final = build_graph(rt).invoke({"feature": feature}, {"recursion_limit": recursion_limit(rt)})
    assert final["probes_run"] == 4 and final["round"] == 1
    assert final["stop_reason"] == "budget:max_probes"
    assert final["conclusion"]["labels"]


def test_a_failing_probe_stops_the_run_with_an_error(session, feature, monkeypatch):
    """The probe node never makes up activations: an engine failure surfaces as an error."""

    def broken(*args, **kwargs):
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(session.store.engine, "run", broken)
    with pytest.raises(RuntimeError, match="simulated engine failure"):
        explain(feature, session=session, max_rounds=2)


def test_tokens_per_round_stay_flat_and_transcript_cost_is_quadratic(session, feature):
    """What each node sends is a summary, not the transcript: every extra round costs about the same."""
    from benchmarks.agent_tokens import CountingScriptedExplainer, transcript_cost

    backend = CountingScriptedExplainer(lambda text: max(1, len(text) // 4))
    scripted = Session(session.subject, session.store, backend, "tiny")
    sent, resent = [], []
    for rounds in (1, 2, 3, 4):
        backend.calls = []
        cost = explain(feature, session=scripted, max_rounds=rounds).to_dict()["cost"]
        assert (
            sum(sum(c["sizes"]) + c["reply"] for c in backend.calls)
            == cost["input_tokens"] + cost["output_tokens"]
        )
        sent.append(cost["input_tokens"] + cost["output_tokens"])
        resent.append(transcript_cost(backend.calls))
    per_round = [b - a for a, b in zip(sent, sent[1:])]
    assert max(per_round) <= 1.25 * min(per_round)  # linear in rounds
    extra = [b - a for a, b in zip(resent, resent[1:])]
    assert extra[0] < extra[1] < extra[2]  # the transcript's rounds get ever dearer


def test_transcript_cost_counts_every_earlier_message_again():
    from benchmarks.agent_tokens import transcript_cost

    calls = [
        {"roles": ["system", "user"], "sizes": [10, 5], "reply": 2},
        {"roles": ["system", "user"], "sizes": [10, 7], "reply": 3},
    ]
    # call 1: 10 + 5 + 2; call 2: 10 + (5 + 2) + 7 + 3
    assert transcript_cost(calls) == 17 + 27


def test_a_token_gets_a_verdicts_worth_of_occurrence_tests_in_its_first_round(explanation):
    """A token set confirmed in round 1 must already have been pruned of tokens that are weak where
    they occur, so round 1 samples as many contexts per token as a verdict needs."""
    from collections import Counter

    from agents.runtime import AgentConfig

    s = AgentConfig()
    assert s.occurrences_per_token >= s.min_occurrences
    first = Counter(
        x["token"]
        for x in explanation[0].to_dict()["evidence"]
        if x["purpose"] == "occurrence" and x["round"] == 1
    )
    assert first and max(first.values()) == s.occurrences_per_token
