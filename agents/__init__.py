"""The SAGE agent: a LangGraph loop of hypothesis, experiment and refinement.

`build_graph(runtime)` returns the compiled graph for custom pipelines; most users
call `sage.explain` instead.
"""

from __future__ import annotations

import warnings

from agents.graph import build_graph
from agents.routing import BudgetConfig
from agents.runtime import AgentConfig, Runtime

__all__ = ["build_graph", "BudgetConfig", "Runtime", "AgentConfig"]

#: old names -> their replacements; still importable, with a DeprecationWarning
_DEPRECATED = {"Budgets": BudgetConfig, "AgentSettings": AgentConfig}


def __getattr__(name: str):
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"agents.{name} is deprecated; use agents.{new.__name__}", DeprecationWarning, stacklevel=2
        )
        return new
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
