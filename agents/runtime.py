"""Everything the nodes need that is not state: the subject, its store, the explainer, budgets."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from agents.routing import Budgets


@dataclass(frozen=True)
class AgentSettings:
    """Tunable constants of the loop (one place)."""

    #: a token is "active" at this fraction of the feature's corpus maximum
    active_threshold: float = 0.25
    n_top: int = 16
    n_quantile_bins: int = 5
    per_quantile: int = 2
    n_negatives: int = 6
    mi_words: int = 20
    corpus_probes_per_hypothesis: int = 3
    max_refinements: int = 2


@dataclass
class Runtime:
    subject: object  # sage.model.subject.Subject
    store: object  # sage.store.activation_store.ActivationStore
    backend: object  # sage.llm.base.Backend
    budgets: Budgets = field(default_factory=Budgets)
    settings: AgentSettings = field(default_factory=AgentSettings)
    on_event: Callable[[str], None] | None = None
    #: one forward pass at a time: the engine's hook capture is not re-entrant
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self):
        return self.store.engine
