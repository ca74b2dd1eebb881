"""Use the graph directly: load the subject and store once, then explain several features with
your own budgets and an explainer of your choice (offline here; try `openai:gpt-4o-mini`)."""

from agents import BudgetConfig, Runtime, build_graph
from agents.graph import recursion_limit
from sage.runs import Session

session = Session.open(explainer="offline")
for feature in (10, 4213):
    rt = Runtime(
        subject=session.subject,
        store=session.store,
        backend=session.backend,
        budgets=BudgetConfig(max_rounds=2, max_probes=60),
    )
    graph = build_graph(rt)
    final = graph.invoke({"feature": feature}, {"recursion_limit": recursion_limit(rt)})
    print(feature, final["conclusion"]["labels"], "-", final["stop_reason"])
