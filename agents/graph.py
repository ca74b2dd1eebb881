"""The LangGraph state machine:

    seed -> hypothesize -> design -> probe -> analyze -> review --(another round)--> design
                                                            \\--(stop)--> conclude -> END

A node that hits a budget or an explainer failure sets `stop_reason`, and the edge
after it goes straight to `conclude`.
"""

from __future__ import annotations

from functools import partial
from typing import get_args

from langgraph.graph import END, START, StateGraph

from agents import nodes
from agents.routing import NodeName, route_after_review, route_or_conclude
from agents.runtime import Runtime
from agents.state import AgentState

NODES: tuple[NodeName, ...] = get_args(NodeName)


def build_graph(rt: Runtime, checkpointer=None):
    """Compile the loop for one runtime (subject, store, explainer, budgets)."""
    g = StateGraph(AgentState)
    for name in NODES:
        g.add_node(name, partial(getattr(nodes, name), rt))
    g.add_edge(START, "seed")
    g.add_conditional_edges("seed", route_or_conclude("hypothesize"), ["hypothesize", "conclude"])
    g.add_conditional_edges("hypothesize", route_or_conclude("design"), ["design", "conclude"])
    g.add_conditional_edges("design", route_or_conclude("probe"), ["probe", "conclude"])
    g.add_edge("probe", "analyze")
    g.add_conditional_edges("analyze", route_or_conclude("review"), ["review", "conclude"])
    g.add_conditional_edges("review", route_after_review, ["design", "conclude"])
    g.add_edge("conclude", END)
    return g.compile(checkpointer=checkpointer)


def recursion_limit(rt: Runtime) -> int:
    """langgraph's step limit, from the round budget (4 nodes a round + fixed ones), with slack."""
    return 8 + 5 * rt.budgets.max_rounds + 10
