"""Everything the nodes need that is not state: the subject, its store, the explainer, budgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.routing import BudgetConfig
from sage.errors import require_ints, require_range
from sage.hypotheses.tiers import FIRE_SHARE

if TYPE_CHECKING:
    from sage.llm.base import Backend
    from sage.store.source import ActivationSource, ProbeEngine, SubjectLike


@dataclass(frozen=True)
class AgentConfig:
    """Tunable constants of the loop (one place)."""

    #: A token is "active" at this fraction of the feature's corpus maximum (0 < t <= 1). This is the
    #: loop's one activity rule: hypothesis scoring, trigger statistics and probe verdicts all use it.
    #: The evaluation keeps the rules of the papers it reproduces instead (generative accuracy:
    #: SAGE's 0.5 x top-10 mean; fuzzing: delphi's 0.3 x the context's max; see docs/methods.md).
    active_threshold: float = 0.25
    #: top-activating corpus contexts the seed node reads
    n_top: int = 16
    #: activation-quantile bins the seed node samples below the top contexts
    n_quantile_bins: int = 5
    #: contexts sampled per quantile bin: 4, as the evaluation samples (sage.evaluation.data), so the
    #: held-out gate below has the activation bins the scorers measure on, not only the top contexts
    per_quantile: int = 4
    #: Random contexts where the feature does not fire (negative controls). As many as the top and
    #: quantile contexts together (16 + 5 x 4), so the pool hypotheses are scored on is balanced and
    #: a broad predicate cannot earn its precision from a handful of negatives.
    n_negatives: int = 36
    #: MI-vocabulary words in the seed summary
    mi_words: int = 20
    #: occurrence tests (agents.nodes._occurrence_probes): probe texts per round set aside for corpus
    #: contexts sampled for a hypothesis's token rather than for the feature
    occurrence_probes: int = 24
    #: the first tokens of each token-set hypothesis that get occurrence tests (untested ones first)
    occurrence_tokens: int = 16
    #: contexts per token and round: as many as a verdict needs (`min_occurrences`), so a token set
    #: confirmed in its first round has already been pruned of tokens that are weak where they occur
    occurrences_per_token: int = 3
    #: occurrences a token needs before they, not the contexts seen so far, decide whether it stays
    min_occurrences: int = 3
    #: how often the analysis may refine one hypothesis before it must decide
    max_refinements: int = 2
    #: probes of a hypothesis that must come out as predicted before it may be confirmed
    min_confirm_tests: int = 2
    #: every k-th quantile / negative seed context is held out of the loop: the explainer never sees
    #: it and hypotheses are not scored on it, and a refinement is kept only when it raises the
    #: predicate's held-out r there (so refinements must generalise, not fit the contexts they were
    #: made from). The top contexts all stay in the loop: no scorer measures on them (the evaluation
    #: excludes the top contexts), and held out they made the gate favour the peak tokens alone.
    heldout_every: int = 3
    #: when fewer than this many held-out quantile contexts are active (max >= `active_threshold`), as
    #: for a feature whose lower bins hold only faint, scattered activity, held-out r is ~0 for every
    #: predicate and no refinement can pass: the top contexts are then held out the same way
    heldout_min_activating: int = 3
    #: held-out r values of two predicates closer than this are a tie, decided by the gate's next keys
    #: (F1 there, then the probes): a few dozen held-out contexts cannot tell such a difference from
    #: noise, and a token moved to the weak tier moves r by about this much while the probes measure it
    heldout_r_tie: float = 0.01
    #: a refinement may not lower the predicate's held-out detection (balanced accuracy of "it holds
    #: somewhere in the context" against "the feature fires there") by more than this, and within it
    #: detection is the gate's second key. Held-out r, pooled over tokens, is carried by the peaks,
    #: and alone it let drops through that cost the weak contexts detection measures (a dash
    #: feature's '(' and em dash; balanced accuracy 0.80 -> 0.65). Off (1.0: never a veto, never a
    #: key) by default, like the larger gate set it was measured with (0.025, about one context of
    #: ~50): it also kept common words that never fired where they occur ('for' on feature 6209).
    heldout_detection_tie: float = 1.0
    #: at the conclusion, a token set's strong tokens whose occurrence tests average below SAGE's
    #: strong level (half the top-10 contexts' mean max; sage.hypotheses.tiers) move to its weak tier.
    #: The loop tiers tokens against each other (what token-level r needs), so a strong tier could
    #: hold tokens that fire at a third of max where they occur, and a reader asked for text on which
    #: the feature fires would pick them (retrieval accuracy 0.3 -> 0.6 for a 'well' feature whose
    #: list had gained 'work', 'high'; docs/methods.md)
    strong_tier_at_conclusion: bool = True
    #: at the conclusion, the best hypothesis (a token set) names in its weak tier the tested tokens it
    #: left out that the feature fires on (above 0) at at least this share of their occurrence tests
    #: (sage.hypotheses.tiers.name_firing; 0: off). The loop drops tokens that are mostly silent where
    #: they occur, which serves the token-level scores, while detection asks whether a text makes the
    #: feature fire at all (re-scored on two compares: detection F1 +0.008 and +0.020, balanced
    #: accuracy level, per-context r -0.015 and -0.024; docs/methods.md)
    fire_share_at_conclusion: float = FIRE_SHARE
    #: extra quantile contexts per bin and extra random negatives drawn for the held-out gate alone
    #: (the explainer never sees them), on top of every `heldout_every`-th seed context. The draws
    #: extend the seed's own (same bins, same random order), so the seed contexts do not change. Off
    #: (0) by default: at 4 and 12 (~26 firing and 24 silent held-out contexts instead of ~6 and 12)
    #: the planted animal latent lost its concept name (7/8 -> 6/8 named) and two fresh 50-feature
    #: compares still missed their targets (docs/methods.md, "the gate's larger held-out set").
    gate_per_quantile: int = 0
    gate_negatives: int = 0
    #: (unseen member, near miss) probe pairs per concept hypothesis and round
    concept_pairs: int = 2
    #: tokens per output hypothesis (top MI words, top / bottom logit-lens tokens; sage.intervention.output)
    output_tokens: int = 10
    #: the feature's strongest contexts its ablation test runs on
    output_contexts: int = 4
    #: neutral prompts continued with and without the amplification, shown in the explanation
    output_continuations: int = 2

    def __post_init__(self) -> None:
        require_range(self, "active_threshold", 0, 1, open_low=True)
        require_ints(self, "n_top", "n_quantile_bins", "per_quantile", "n_negatives", "mi_words")
        require_ints(self, "occurrence_tokens", "occurrences_per_token", "min_occurrences")
        require_ints(self, "occurrence_probes", minimum=0)
        require_ints(self, "max_refinements", minimum=0)  # 0 = never refine
        require_ints(self, "min_confirm_tests", minimum=1)
        require_ints(self, "heldout_every", minimum=2)  # 1 would hold out everything
        require_ints(self, "heldout_min_activating", minimum=0)
        require_range(self, "heldout_r_tie", 0, 1)
        require_range(self, "heldout_detection_tie", 0, 1)
        require_range(self, "fire_share_at_conclusion", 0, 1)
        require_ints(self, "gate_per_quantile", "gate_negatives", minimum=0)
        require_ints(self, "concept_pairs", minimum=0)
        require_ints(self, "output_tokens", "output_contexts")
        require_ints(self, "output_continuations", minimum=0)


@dataclass
class Runtime:
    """The run's fixed parts. Nodes read it; only `state` changes between nodes."""

    #: the local model + SAE or a Neuronpedia SAE (`sage.store.source`: one interface for both)
    subject: SubjectLike
    store: ActivationSource
    #: the explainer
    backend: Backend
    budgets: BudgetConfig = field(default_factory=BudgetConfig)
    settings: AgentConfig = field(default_factory=AgentConfig)
    #: called with each progress message as a node emits it
    on_event: Callable[[str], None] | None = None
    #: one forward pass at a time: the engine's hook capture is not re-entrant
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self) -> ProbeEngine:
        """The store's activation engine (model + SAE, or the remote endpoint), for running probes."""
        return self.store.engine
