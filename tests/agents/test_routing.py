"""Routing and hard budgets of the agent loop (agents/routing.py, nodes.ask): pure unit tests, no model."""

import pytest

from agents.nodes import ask
from agents.routing import (
    BudgetConfig,
    budget_exhausted,
    review_decision,
    route_after_review,
    route_or_conclude,
)
from agents.runtime import AgentConfig, Runtime
from agents.state import empty_usage
from sage.errors import ConfigError
from sage.llm.base import Backend, Usage
from sage.llm.pricing import PriceTable

B = BudgetConfig(max_rounds=3, max_probes=10, max_llm_tokens=1000, max_usd=0.5)
OPEN = [{"id": "H1", "status": "open"}, {"id": "H2", "status": "refuted"}, {"id": "H3", "status": "refined"}]
DECIDED = [
    {"id": "H1", "status": "confirmed"},
    {"id": "H2", "status": "refuted"},
    {"id": "H3", "status": "refuted"},
]


def usage(tokens_in=0, tokens_out=0, usd=0.0) -> dict:
    return {"input_tokens": tokens_in, "output_tokens": tokens_out, "usd": usd, "llm_calls": 1}


def test_within_every_budget_nothing_is_exhausted():
    assert budget_exhausted({}, B) is None
    assert budget_exhausted({"usage": usage(600, 399, 0.49), "probes_run": 9}, B) is None


@pytest.mark.parametrize(
    "state, reason",
    [
        ({"usage": usage(1000, 0)}, "budget:max_llm_tokens"),
        ({"usage": usage(700, 300)}, "budget:max_llm_tokens"),  # input and output tokens both count
        ({"usage": usage(0, 1200)}, "budget:max_llm_tokens"),
        ({"usage": usage(10, 10, 0.5)}, "budget:max_usd"),
        ({"usage": usage(10, 10, 2.0)}, "budget:max_usd"),
        ({"probes_run": 10}, "budget:max_probes"),
        ({"probes_run": 11, "usage": usage(5, 5, 0.01)}, "budget:max_probes"),
    ],
)
def test_each_budget_is_enforced_at_its_limit(state, reason):
    assert budget_exhausted(state, B) == reason


def test_tokens_are_reported_before_usd_and_probes_when_several_are_spent():
    assert budget_exhausted({"usage": usage(2000, 0, 9.0), "probes_run": 99}, B) == "budget:max_llm_tokens"
    assert budget_exhausted({"usage": usage(0, 0, 9.0), "probes_run": 99}, B) == "budget:max_usd"


def test_review_runs_another_round_while_open_and_under_budget():
    state = {"round": 1, "hypotheses": OPEN, "usage": usage(100, 100, 0.1), "probes_run": 4}
    assert review_decision(state, B) is None
    assert route_after_review({**state, "stop_reason": None}) == "design"


def test_review_stops_at_max_rounds():
    state = {"round": 3, "hypotheses": OPEN, "usage": usage(), "probes_run": 4}
    assert review_decision(state, B) == "max_rounds"
    assert review_decision({**state, "round": 2}, B) is None
    assert review_decision({**state, "round": 1}, BudgetConfig(max_rounds=1)) == "max_rounds"


def test_review_stops_when_converged():
    state = {"round": 1, "hypotheses": DECIDED, "usage": usage(), "probes_run": 4}
    assert review_decision(state, B).startswith("converged")
    # no hypotheses at all is not convergence
    assert review_decision({**state, "hypotheses": []}, B) is None


def test_converged_is_reported_before_max_rounds_and_a_budget_before_both():
    state = {"round": 3, "hypotheses": DECIDED, "usage": usage(), "probes_run": 4}
    assert review_decision(state, B).startswith("converged")
    assert review_decision({**state, "probes_run": 10}, B) == "budget:max_probes"


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("usage", usage(999, 1), "budget:max_llm_tokens"),
        ("usage", usage(1, 1, 0.75), "budget:max_usd"),
        ("probes_run", 12, "budget:max_probes"),
    ],
)
def test_review_stops_on_a_spent_budget_in_round_one(name, value, reason):
    state = {"round": 1, "hypotheses": OPEN, "usage": usage(), "probes_run": 0, name: value}
    assert review_decision(state, B) == reason


def test_an_earlier_stop_reason_is_kept():
    state = {"round": 1, "hypotheses": OPEN, "stop_reason": "explainer_error: boom"}
    assert review_decision(state, B) == "explainer_error: boom"
    assert route_after_review(state) == "conclude"


def test_route_or_conclude():
    route = route_or_conclude("design")
    assert route({"stop_reason": None}) == "design"
    assert route({}) == "design"
    assert route({"stop_reason": "budget:max_usd"}) == "conclude"


# -- ask(): the one door to the explainer enforces the budgets -----------------------------------------
class Counting(Backend):
    """Answers every call with a fixed usage; counts calls."""

    name = "counting"

    def __init__(self, tokens_in: int, tokens_out: int):
        super().__init__(max_schema_retries=0)
        self.calls = 0
        self.tokens = (tokens_in, tokens_out)

    def _call(self, messages, schema, req):
        self.calls += 1
        return {"labels": ["x"], "description": "a description", "best_hypothesis_ids": []}, Usage(
            *self.tokens
        )


class FakeSubject:
    def info(self):
        return {"hook_name": "h", "model": "m"}


def runtime(backend, budgets=B) -> Runtime:
    return Runtime(subject=FakeSubject(), store=None, backend=backend, budgets=budgets)


FIELDS = {"feature": 3, "hypotheses": "-", "output_hypotheses": "-", "evidence": "-"}


def test_ask_makes_no_call_once_a_budget_is_spent():
    backend = Counting(10, 10)
    state = {"usage": usage(1000, 0)}
    data, used, stop = ask(runtime(backend), state, "conclude", "conclude", FIELDS, {}, "conclusion")
    assert backend.calls == 0 and data is None and stop == "budget:max_llm_tokens"
    assert used == state["usage"]


def test_ask_adds_usage_and_reports_the_budget_its_call_spent():
    backend = Counting(300, 200)
    state = {"usage": empty_usage()}
    data, used, stop = ask(runtime(backend), state, "conclude", "conclude", FIELDS, {}, "conclusion")
    assert data["labels"] == ["x"] and stop is None
    assert (used["input_tokens"], used["output_tokens"], used["llm_calls"]) == (300, 200, 1)
    data, used, stop = ask(
        runtime(backend), {"usage": used}, "conclude", "conclude", FIELDS, {}, "conclusion"
    )
    assert data is not None and used["input_tokens"] + used["output_tokens"] == 1000
    assert stop == "budget:max_llm_tokens" and backend.calls == 2


def test_ask_counts_usd_from_the_price_table_and_stops_at_max_usd():
    backend = Counting(100_000, 50_000)  # priced below at $2 / $4 per 1M tokens: $0.2 + $0.2 a call
    backend.price_model = "priced-model"
    backend.prices = PriceTable({"priced-model": {"input": 2.0, "output": 4.0}})
    budgets = BudgetConfig(max_usd=0.5, max_llm_tokens=10**9)
    _, used, stop = ask(
        runtime(backend, budgets), {"usage": empty_usage()}, "conclude", "conclude", FIELDS, {}, "conclusion"
    )
    assert used["usd"] == pytest.approx(0.4) and stop is None
    _, used, stop = ask(
        runtime(backend, budgets), {"usage": used}, "conclude", "conclude", FIELDS, {}, "conclusion"
    )
    assert used["usd"] == pytest.approx(0.8) and stop == "budget:max_usd"
    _, _, stop = ask(
        runtime(backend, budgets), {"usage": used}, "conclude", "conclude", FIELDS, {}, "conclusion"
    )
    assert stop == "budget:max_usd" and backend.calls == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rounds": 0},
        {"max_probes": -1},
        {"probes_per_round": 2.5},
        {"max_llm_tokens": True},
        {"max_usd": -0.01},
        {"max_usd": float("nan")},
    ],
)
def test_budget_config_rejects_impossible_limits(kwargs):
    with pytest.raises(ConfigError):
        BudgetConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"active_threshold": 0.0}, {"active_threshold": 1.5}, {"n_top": 0}, {"max_refinements": -1}]
)
def test_agent_config_rejects_impossible_settings(kwargs):
    with pytest.raises(ConfigError):
        AgentConfig(**kwargs)
    AgentConfig(active_threshold=1.0, max_refinements=0)  # the edges are allowed


def test_old_settings_names_still_import_with_a_deprecation_warning():
    import agents

    with pytest.warns(DeprecationWarning, match="BudgetConfig"):
        from agents import Budgets
    with pytest.warns(DeprecationWarning, match="AgentConfig"):
        assert agents.AgentSettings is AgentConfig
    assert Budgets is BudgetConfig and Budgets(max_rounds=2).max_rounds == 2
