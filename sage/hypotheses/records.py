"""The records of the hypothesis language: a hypothesis and a conclusion, as plain dicts.

They are TypedDicts, not classes, because they live in the agent's state, which
langgraph checkpoints as JSON; the agent (`agents/state.py`) and the baselines build
and read the same shapes.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class HistoryEntry(TypedDict):
    """One step in a hypothesis's life: its status after a round, and why."""

    #: the round that set this status (0 = proposed from the seed contexts)
    round: int
    #: "open", "confirmed", "refuted" or "refined"
    status: str
    #: the hypothesis's text from this round on (when proposed or refined)
    text: NotRequired[str]
    #: the analysis's reason for the status
    note: NotRequired[str]
    #: the predicate's precision / recall on the evidence the analysis saw (None: no predicate)
    precision: NotRequired[float | None]
    recall: NotRequired[float | None]


#: what the loop writes into a history entry's note when it rejects a refinement that did not
#: generalise (agents.nodes.apply_update); an explainer reads it to judge the hypothesis as it stands
REFINEMENT_REJECTED = "refinement rejected"


class Hypothesis(TypedDict):
    """A hypothesis about where a feature fires, with its machine-checked scores."""

    #: "H1", "H2", ... in the order the explainer proposed them
    id: str
    text: str
    #: "lexical", "contextual", "semantic", "syntactic-structural", ...
    kind: str
    #: "primary", "alternative" or "control"
    role: str
    #: a predicate (see `sage.hypotheses.predicates`), or None when the text has no checkable form
    predicate: dict[str, Any] | None
    #: "open", "confirmed", "refuted" or "refined"
    status: str
    #: how often the analysis has refined it (the agent caps this); absent outside the agent loop
    refinements: NotRequired[int]
    #: a named category, when the hypothesis is one: {"name", "members" (not among the examples),
    #: "non_members" (near misses)}; the agent probes with both (sage/hypotheses/experiments.py)
    concept: NotRequired[dict[str, Any] | None]
    history: list[HistoryEntry]
    #: token-level scores of the predicate against observed activations (None: no predicate / unscored)
    precision: NotRequired[float | None]
    recall: NotRequired[float | None]
    f1: NotRequired[float | None]
    #: Pearson r of the predicate's mask with the activations on the seed contexts held out of the loop
    #: (what refinements must raise first), and its F1 there
    heldout_r: NotRequired[float | None]
    heldout_f1: NotRequired[float | None]


class Conclusion(TypedDict):
    """The explanation a run ends with."""

    #: short labels, one per best hypothesis (two for a polysemantic feature)
    labels: list[str]
    #: readable English, at most 1200 characters
    description: str
    best_hypothesis_ids: list[str]
    #: who wrote it: the backend's name, or the rule-based renderer standing in for it
    concluded_by: NotRequired[str]


#: the scores of a hypothesis nobody has checked yet
UNSCORED: dict[str, None] = {"precision": None, "recall": None, "f1": None}


def new_hypothesis(
    hid: str, text: str, kind: str, role: str, predicate: dict | None, **fields: Any
) -> Hypothesis:
    """A freshly proposed, open hypothesis with a one-entry history (round 0).

    `fields` (e.g. `refinements=0`, or `**UNSCORED`) go between `status` and `history`,
    so the record's key order is the same wherever it is built.
    """
    history: list[HistoryEntry] = [{"round": 0, "status": "open", "text": text}]
    return {
        "id": hid,
        "text": text,
        "kind": kind,
        "role": role,
        "predicate": predicate,
        "status": "open",
        **fields,
        "history": history,
    }  # type: ignore[typeddict-item]
