"""The agent graph with the real `openai` and `anthropic` clients against scripted servers on 127.0.0.1.

The script answers each task of the loop (identified by the schema the request asks for)
with valid JSON, except where a test injects a fault: malformed JSON, a rate limit, a
permanent error, or an interrupt raised in this process while a call is under way.
"""

from __future__ import annotations

import pytest

from sage.llm import RetryConfig, make_backend
from sage.runs import Session, explain, validate_explanation
from tests.agent_support import agent_store, answer, build_store, live_features, task_of_body  # noqa: F401 (the `store` fixture)
from tests.scripted_servers import fail, ok, serve

FAST = RetryConfig(max_attempts=4, initial_wait=0.001, max_wait=0.01, timeout=10.0)
SPECS = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5-20251001"}
BOTH = pytest.mark.parametrize("protocol", ["openai", "anthropic"])
#: the calls of an uninterrupted 2-round run
TWO_ROUNDS = ["hypothesize", "design", "analyze", "design", "analyze", "conclude"]
IN_TOKENS, OUT_TOKENS = 100, 50


class Script:
    """Answers every task validly with fixed usage, except the replies in `faults` (call index -> Reply).

    Shared between servers, so call numbering (and thus probe texts) continues across a resume."""

    def __init__(self, faults: dict | None = None):
        self.faults = faults or {}
        self.tasks: list[str] = []

    def __call__(self, body: dict, _index: int):
        n = len(self.tasks)
        self.tasks.append(task_of_body(body))
        if n in self.faults:
            return self.faults[n]
        return ok(answer(self.tasks[-1], n), input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS)


@pytest.fixture(scope="module")
def feature(store):
    return live_features(store, 1)[0]


@pytest.fixture
def session_for(store, monkeypatch):
    """A Session whose explainer is the real SDK client of `srv.protocol`, pointed at `srv`."""

    def make(srv, **options) -> Session:
        if srv.protocol == "openai":
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
            monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        else:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        backend = make_backend(SPECS[srv.protocol], retry=FAST, **options)
        return Session(store.subject, store, backend, "tiny")

    return make


def tasks_sent(srv) -> list[str]:
    return [task_of_body(body) for body in srv.requests]


def check_valid(e) -> dict:
    validate_explanation(e.to_dict())
    return e.to_dict()


@BOTH
def test_full_run_asks_each_task_once_per_step(protocol, session_for, feature):
    script = Script()
    with serve(protocol, script) as srv:
        e = explain(feature, session=session_for(srv), max_rounds=2)
    data = check_valid(e)
    assert tasks_sent(srv) == TWO_ROUNDS
    assert data["stop_reason"] == "max_rounds" and data["rounds"] == 2
    assert data["concluded_by"] == SPECS[protocol] and e.labels == ["scripted: the token 'cat'"]
    assert data["cost"]["llm_calls"] == 6
    assert (data["cost"]["input_tokens"], data["cost"]["output_tokens"]) == (6 * IN_TOKENS, 6 * OUT_TOKENS)
    assert data["cost"]["usd"] > 0  # both models are in the price table
    # the scripted analysis reached the state: H2 refined, H3 refuted
    by_id = {h["id"]: h for h in data["hypotheses"]}
    assert by_id["H2"]["text"] == "Fires on digits after a space." and by_id["H3"]["status"] == "refuted"
    assert len(data["evidence"]) >= 6 and {ev["round"] for ev in data["evidence"]} == {1, 2}


@BOTH
def test_malformed_json_then_valid_answer_completes_and_counts_attempts(protocol, session_for, feature):
    script = Script(
        {0: ok('{"hypotheses": [{"text": "cut off', input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS)}
    )
    with serve(protocol, script) as srv:
        e = explain(feature, session=session_for(srv), max_rounds=2)
    data = check_valid(e)
    assert tasks_sent(srv) == ["hypothesize", *TWO_ROUNDS]
    assert data["stop_reason"] == "max_rounds"
    assert data["cost"]["llm_calls"] == 7  # the re-ask is an attempt, and counted
    assert data["cost"]["input_tokens"] == 7 * IN_TOKENS  # so are its tokens
    reask = srv.requests[1]["messages"]
    assert reask[-1]["role"] == "user" and "not valid JSON" in reask[-1]["content"]
    assert len(data["hypotheses"]) == 3


@BOTH
def test_rate_limit_and_server_error_are_retried(protocol, session_for, feature):
    script = Script(
        {0: fail(429, headers={"retry-after-ms": "1"}), 4: fail(500 if protocol == "openai" else 529)}
    )
    with serve(protocol, script) as srv:
        e = explain(feature, session=session_for(srv), max_rounds=2)
    data = check_valid(e)
    sent = tasks_sent(srv)
    assert sent == [
        "hypothesize",
        "hypothesize",
        "design",
        "analyze",
        "design",
        "design",
        "analyze",
        "conclude",
    ]
    assert [r.status for r in srv.served].count(200) == 6
    assert data["stop_reason"] == "max_rounds" and data["concluded_by"] == SPECS[protocol]
    assert data["cost"]["llm_calls"] == 6 and data["cost"]["input_tokens"] == 6 * IN_TOKENS


@BOTH
@pytest.mark.parametrize("budget", ["tokens", "usd"])
def test_budget_exhausted_mid_run_concludes_from_the_evidence_so_far(protocol, budget, session_for, feature):
    script = Script()
    with serve(protocol, script) as srv:
        if budget == "tokens":  # 150 tokens a call: the third call crosses 400
            session = session_for(srv)
            e = explain(feature, session=session, max_rounds=5, max_llm_tokens=400)
        else:  # $1000 per 1M tokens: $0.15 a call, the third call crosses $0.40
            prices = {SPECS[protocol].split(":", 1)[1]: {"input": 1000.0, "output": 1000.0}}
            session = session_for(srv, prices=prices)
            e = explain(feature, session=session, max_rounds=5, budget_usd=0.4)
    data = check_valid(e)
    assert data["stop_reason"] == ("budget:max_llm_tokens" if budget == "tokens" else "budget:max_usd")
    assert tasks_sent(srv) == ["hypothesize", "design", "analyze"]  # no call once the budget is spent
    assert data["cost"]["llm_calls"] == 3 and data["rounds"] == 1
    if budget == "usd":
        assert data["cost"]["usd"] == pytest.approx(0.45)
    # concluded by the rule-based renderer from the round-1 evidence, and it says so
    assert data["concluded_by"].startswith("offline (rule-based, from the evidence so far)")
    assert data["evidence"] and {ev["round"] for ev in data["evidence"]} == {1}
    assert f"Across {len(data['evidence'])} probes" in data["description"]
    assert data["labels"] and data["labels"][0] not in ("dead feature", "unexplained feature")


# -- interrupt and resume -------------------------------------------------------------------------------
def strip_timings(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "timings"}


@pytest.fixture
def counters(store, monkeypatch):
    """How often the probe node ran the model (engine.run) and the seed node read the store."""
    counts = {"probe": 0, "seed": 0}
    run, stats = store.engine.run, store.feature_stats

    def counted_run(*a, **k):
        counts["probe"] += 1
        return run(*a, **k)

    def counted_stats(*a, **k):
        counts["seed"] += 1
        return stats(*a, **k)

    monkeypatch.setattr(store.engine, "run", counted_run)
    monkeypatch.setattr(store, "feature_stats", counted_stats)
    return counts


@BOTH
def test_interrupt_during_a_call_then_resume_redoes_no_finished_node(
    protocol, session_for, feature, counters, tmp_path
):
    """Ctrl-C (KeyboardInterrupt) during the 4th call (round-2 design); resume finishes the run."""
    with serve(protocol, Script()) as srv:  # the reference: one uninterrupted run
        reference = explain(feature, session=session_for(srv), max_rounds=2).to_dict()
    assert counters == {"probe": 2, "seed": 1}
    counters.update(probe=0, seed=0)

    script, db = Script(), tmp_path / "ck.sqlite"
    with serve(protocol, script) as srv:
        session = session_for(srv)
        real_call, calls = session.backend._call, []

        def interrupted(*args):
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return real_call(*args)

        session.backend._call = interrupted
        with pytest.raises(KeyboardInterrupt):
            explain(feature, session=session, max_rounds=2, checkpoint_db=db)
    assert tasks_sent(srv) == TWO_ROUNDS[:3] and counters == {"probe": 1, "seed": 1}

    with serve(protocol, script) as srv2:  # a new process would build a fresh backend and session
        e = explain(feature, session=session_for(srv2), max_rounds=2, checkpoint_db=db, resume=True)
    assert (
        tasks_sent(srv2) == TWO_ROUNDS[3:]
    )  # design, analyze (round 2), conclude: nothing finished is redone
    assert counters == {"probe": 2, "seed": 1}  # round 1's probes were not run again, nor the seed
    assert strip_timings(check_valid(e)) == strip_timings(reference)


@BOTH
def test_interrupt_in_the_probe_node_then_resume_reruns_only_that_node(
    protocol, session_for, feature, counters, tmp_path
):
    script, db = Script(), tmp_path / "ck.sqlite"

    def on_event(msg: str):  # raised inside the round-2 probe node, after the model ran
        if msg.startswith("probed") and counters["probe"] == 2 and not interrupted:
            interrupted.append(msg)
            raise KeyboardInterrupt

    interrupted: list = []
    with serve(protocol, script) as srv, pytest.raises(KeyboardInterrupt):
        explain(feature, session=session_for(srv), max_rounds=2, checkpoint_db=db, on_event=on_event)
    assert tasks_sent(srv) == TWO_ROUNDS[:4] and counters["probe"] == 2
    with serve(protocol, script) as srv2:
        e = explain(
            feature, session=session_for(srv2), max_rounds=2, checkpoint_db=db, resume=True, on_event=on_event
        )
    assert tasks_sent(srv2) == TWO_ROUNDS[4:]
    assert counters == {"probe": 3, "seed": 1}  # only the interrupted probe node ran again
    data = check_valid(e)
    assert data["cost"]["llm_calls"] == 6 and data["stop_reason"] == "max_rounds"
    assert {ev["round"] for ev in data["evidence"]} == {1, 2}


@BOTH
def test_permanent_failure_concludes_then_resume_continues_from_the_failed_node(
    protocol, session_for, feature, counters, tmp_path
):
    """A 401 on the 4th call ends the run (recorded, concluded from round 1); after the key is fixed,
    resume re-asks only the failed call and what follows it."""
    script, db = Script({3: fail(401)}), tmp_path / "ck.sqlite"
    with serve(protocol, script) as srv:
        failed = explain(feature, session=session_for(srv), max_rounds=2, checkpoint_db=db).to_dict()
    validate_explanation(failed)
    assert tasks_sent(srv) == TWO_ROUNDS[:4]  # 401 is not retried
    assert failed["stop_reason"].startswith("explainer_error") and "invalid API key" in failed["stop_reason"]
    # the failure is the conclusion, with its reason; round 1's evidence follows, marked as partial
    assert failed["labels"] == ["explanation failed"] and failed["predicate"] is None
    assert failed["description"].startswith("explanation failed: invalid API key")
    assert "Evidence gathered before the failure:" in failed["description"]
    assert failed["concluded_by"] == "none: the explainer failed" and failed["rounds"] == 2
    assert counters == {"probe": 1, "seed": 1}

    with serve(protocol, script) as srv2:
        e = explain(feature, session=session_for(srv2), max_rounds=2, checkpoint_db=db, resume=True)
    assert tasks_sent(srv2) == TWO_ROUNDS[3:]
    assert counters == {"probe": 2, "seed": 1}
    data = check_valid(e)
    assert data["stop_reason"] == "max_rounds" and data["concluded_by"] == SPECS[protocol]
    assert data["cost"]["llm_calls"] == 6 and {ev["round"] for ev in data["evidence"]} == {1, 2}
    # round-1 hypotheses and evidence are exactly those of the failed run
    assert [ev for ev in data["evidence"] if ev["round"] == 1] == failed["evidence"]


@BOTH
def test_resume_of_a_finished_run_makes_no_call(protocol, session_for, feature, counters, tmp_path):
    db = tmp_path / "ck.sqlite"
    with serve(protocol, Script()) as srv:
        first = explain(feature, session=session_for(srv), max_rounds=2, checkpoint_db=db).to_dict()
    with serve(protocol, Script()) as srv2:
        again = explain(
            feature, session=session_for(srv2), max_rounds=2, checkpoint_db=db, resume=True
        ).to_dict()
    assert srv2.requests == [] and counters == {"probe": 2, "seed": 1}
    assert strip_timings(again) == strip_timings(first)
