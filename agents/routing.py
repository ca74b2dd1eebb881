"""Routing and hard budgets of the agent loop: pure functions of the state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agents.state import AgentState
from sage.errors import require_ints, require_range

DECIDED = {"confirmed", "refuted"}

#: the graph's nodes, in the order a round visits them
NodeName = Literal["seed", "hypothesize", "design", "probe", "analyze", "review", "conclude"]


@dataclass(frozen=True)
class BudgetConfig:
    """Hard limits enforced in code. Hitting one concludes with the evidence so far."""

    #: design -> probe -> analyze rounds at most (the loop may converge earlier)
    max_rounds: int = 3
    #: probe texts run through the model, over all rounds
    max_probes: int = 240
    #: LLM input + output tokens, over all calls
    max_llm_tokens: int = 200_000
    #: LLM spend in US dollars (0 = no paid call at all)
    max_usd: float = 1.00
    #: probe texts per round at most
    probes_per_round: int = 32

    def __post_init__(self) -> None:
        require_ints(self, "max_rounds", "max_probes", "max_llm_tokens", "probes_per_round")
        require_range(self, "max_usd", 0)


def budget_exhausted(state: AgentState, budgets: BudgetConfig) -> str | None:
    """The name of the first budget the state has used up, or None."""
    usage = state.get("usage", {})
    if usage.get("input_tokens", 0) + usage.get("output_tokens", 0) >= budgets.max_llm_tokens:
        return "budget:max_llm_tokens"
    if usage.get("usd", 0.0) >= budgets.max_usd:
        return "budget:max_usd"
    if state.get("probes_run", 0) >= budgets.max_probes:
        return "budget:max_probes"
    return None


def route_after_review(state: AgentState) -> Literal["design", "conclude"]:
    """'design' for another round, or 'conclude' (review has set `stop_reason` when to stop)."""
    return "conclude" if state.get("stop_reason") else "design"


def review_decision(state: AgentState, budgets: BudgetConfig) -> str | None:
    """Why to stop now (None = run another round)."""
    if state.get("stop_reason"):
        return state["stop_reason"]
    spent = budget_exhausted(state, budgets)
    if spent:
        return spent
    hyps = state.get("hypotheses", [])
    if hyps and all(h["status"] in DECIDED for h in hyps):
        return "converged: every hypothesis confirmed or refuted"
    if state.get("round", 0) >= budgets.max_rounds:
        return "max_rounds"
    return None


def route_or_conclude(next_node: NodeName) -> Callable[[AgentState], NodeName]:
    """Edge function: go to `next_node` unless a node has set a stop reason."""

    def route(state: AgentState) -> NodeName:
        return "conclude" if state.get("stop_reason") else next_node

    return route
