"""Everything the nodes need that is not state: the subject, its store, the explainer, budgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral
from typing import TYPE_CHECKING

from agents.routing import BudgetConfig
from sage.errors import ConfigError

if TYPE_CHECKING:
    from sage.llm.base import Backend
    from sage.model.engine import ActivationEngine
    from sage.model.subject import Subject
    from sage.store.activation_store import ActivationStore


@dataclass(frozen=True)
class AgentConfig:
    """Tunable constants of the loop (one place)."""

    #: a token is "active" at this fraction of the feature's corpus maximum (0 < t <= 1)
    active_threshold: float = 0.25
    #: top-activating corpus contexts the seed node reads
    n_top: int = 16
    #: activation-quantile bins the seed node samples below the top contexts
    n_quantile_bins: int = 5
    #: contexts sampled per quantile bin
    per_quantile: int = 2
    #: random contexts where the feature does not fire (negative controls)
    n_negatives: int = 6
    #: MI-vocabulary words in the seed summary
    mi_words: int = 20
    #: corpus contexts retrieved per token-set hypothesis as extra probes, each round
    corpus_probes_per_hypothesis: int = 3
    #: how often the analysis may refine one hypothesis before it must decide
    max_refinements: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.active_threshold <= 1:
            raise ConfigError(f"active_threshold must be in (0, 1], got {self.active_threshold!r}")
        for name in (
            "n_top",
            "n_quantile_bins",
            "per_quantile",
            "n_negatives",
            "mi_words",
            "corpus_probes_per_hypothesis",
            "max_refinements",
        ):
            value = getattr(self, name)
            # max_refinements may be 0 (never refine); the others need at least one
            low = 0 if name == "max_refinements" else 1
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass
class Runtime:
    """The run's fixed parts. Nodes read it; only `state` changes between nodes."""

    subject: Subject
    store: ActivationStore
    #: the explainer
    backend: Backend
    budgets: BudgetConfig = field(default_factory=BudgetConfig)
    settings: AgentConfig = field(default_factory=AgentConfig)
    #: called with each progress message as a node emits it
    on_event: Callable[[str], None] | None = None
    #: one forward pass at a time: the engine's hook capture is not re-entrant
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self) -> ActivationEngine:
        """The store's activation engine (model + SAE), for running probes."""
        return self.store.engine
