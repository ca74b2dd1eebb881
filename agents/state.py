"""The agent's state: plain JSON-serialisable data, so langgraph can checkpoint it to SQLite.

Each node returns a partial update; list fields are replaced, not appended, so a
resumed run sees exactly what the last finished node wrote. Every record below is a
TypedDict: a plain dict at run time (checkpointed as JSON), with its keys typed.
Activations in the state are normalised by the feature's corpus maximum (1.0 = max).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from sage.hypotheses.records import Conclusion, HistoryEntry, Hypothesis

__all__ = [
    "AgentState",
    "Conclusion",
    "HistoryEntry",
    "Hypothesis",
    "Observation",
    "Probe",
    "SeedContext",
    "SeedSummary",
    "Usage",
    "empty_usage",
]


class SeedContext(TypedDict):
    """A corpus context the seed node read from the activation store."""

    #: one string per token, [T]; the first `ENGINE.skip_positions` are the sink
    tokens: list[str]
    #: the feature's normalised activation per token, [T]
    acts: list[float]
    #: the text after the sink
    text: str
    context_id: int


class SeedSummary(TypedDict):
    """What the store says about the feature before any experiment."""

    #: the feature's corpus maximum (raw units); every `acts` in the state is divided by it
    max_activation: float
    #: share of corpus tokens where it fires (0..1)
    frequency: float
    mean_activation: float
    top: list[SeedContext]
    quantiles: list[SeedContext]
    negatives: list[SeedContext]
    #: every `heldout_every`-th quantile / negative context, kept out of the loop (the explainer never
    #: sees them); refinements must raise the predicate's held-out r on them
    heldout: list[SeedContext]
    #: [word, MI score] pairs, best first
    mi_words: list[list]
    #: [token, share of activation mass] pairs (tuples before a checkpoint round trip)
    trigger_tokens: list
    #: the same over 98% of the mass, up to 30 tokens (what a category is named from)
    active_tokens: NotRequired[list]
    #: [token, share of active positions] pairs
    preceding: list
    #: structural property -> share of active tokens that have it
    structure: dict[str, float]
    #: output-side candidates: "mi" (top MI words), "logitlens" / "logitlens_bottom" (top / bottom
    #: logit-lens tokens); empty without local SAE weights
    output_candidates: NotRequired[dict[str, list[str]]]


class Probe(TypedDict):
    """A probe the design node chose: a text with a prediction about the feature on it."""

    #: the hypothesis it tests
    hypothesis_id: str
    text: str
    #: "minimal_pair", "negative_control", "occurrence", ...
    purpose: str
    #: "high" (should reach the active threshold) or "low" (should stay below it)
    expect: str
    #: "explainer" (designed by the backend) or "corpus" (retrieved from the store)
    source: str
    #: "R{round}P{i}", set once the round's probes are final
    probe_id: str
    round: int
    #: index of the probe it pairs with in the explainer's answer (minimal pairs), or None
    pair_of: NotRequired[int | None]
    #: an occurrence test's token (normalised): the context was sampled because it contains it
    token: NotRequired[str]


class Observation(Probe):
    """An evidence item: a probe run through the model and SAE, and its verdict."""

    #: one string per token, [T]
    tokens: list[str]
    #: normalised activation per token, [T], rounded to 4 places
    acts: list[float]
    #: raw activation per token, [T], rounded to 5 places (what the report's heat-maps show)
    raw_acts: NotRequired[list[float]]
    #: positions the engine treated as attention sinks (zeroed): the first and any massive-norm token
    sink_positions: NotRequired[list[int]]
    #: raw activation at the peak after the sink (0.0 for an empty text)
    max_activation: float
    #: normalised activation at that peak
    normalized: float
    #: the token at the peak, or None when the probe never fired
    max_token: str | None
    #: whether the result matched `expect`
    agrees: bool


class Usage(TypedDict):
    """LLM use so far, summed over every call (retries included)."""

    input_tokens: int
    output_tokens: int
    usd: float
    llm_calls: int


class AgentState(TypedDict, total=False):
    """The whole state; a node's update is any subset of it."""

    feature: int
    #: rounds started (0 before the first design)
    round: int
    seed: SeedSummary
    hypotheses: list[Hypothesis]
    #: output-side hypotheses ("promotes / suppresses these tokens", sage.intervention.output), judged
    #: in code from their intervention experiments
    output_hypotheses: list[dict]
    #: those experiments' measurements (sage.intervention.output.run_experiments), once run
    output_results: dict | None
    #: probes designed but not yet run
    pending: list[Probe]
    #: probes run, every round
    evidence: list[Observation]
    usage: Usage
    probes_run: int
    #: why the loop stops (a budget, an explainer failure, convergence); None = go on
    stop_reason: str | None
    conclusion: Conclusion
    #: node -> seconds (summed over rounds)
    timings: dict[str, float]
    #: human-readable progress log
    events: list[str]


def empty_usage() -> Usage:
    return {"input_tokens": 0, "output_tokens": 0, "usd": 0.0, "llm_calls": 0}
