"""Baselines SAGE is compared against (same subject, same store, same explainer, same scorer).

- `one-shot`: one explainer call over the feature's seed contexts (top-activating
  contexts with their activations, quantile samples, MI words; exactly what the
  agent's `seed` node gathers), no experiments. The explainer's hypotheses are
  checked against those same contexts and the best one (token-level F1, controls
  excluded) becomes the explanation. With the `offline` explainer this is the best
  single predicate read off the top contexts.
- `mi`: the top words of the MI-vocabulary ranking (Wu et al., arXiv 2502.15576) as
  a token_set predicate and label; no LLM, no contexts.
- `sage` (not here): the full loop, `sage.runs.explain`.

Both write Explanation dicts that validate against prompts/schemas/explanation.json.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agents import Runtime, nodes
from agents.state import empty_usage
from sage.batch import run_batch
from sage.errors import ConfigError, require_ints
from sage.hypotheses.conclusion import conclude_from_evidence
from sage.hypotheses.records import UNSCORED, new_hypothesis
from sage.runs import Explanation, Session, done_features, explanation_record, validate_explanation
from sage.vocab.lookup import mi_words

METHODS = ("one-shot", "mi", "sage")


@dataclass(frozen=True)
class BaselineConfig:
    #: MI words in the `mi` baseline's predicate (its label shows the first few)
    mi_words: int = 10
    #: MI words shown in the `mi` baseline's label
    mi_label_words: int = 5

    def __post_init__(self) -> None:
        require_ints(self, "mi_words", "mi_label_words")


BASELINE = BaselineConfig()


def one_shot(feature: int, session: Session) -> Explanation:
    """The one-shot baseline for `feature` (see the module docstring)."""

    session.subject.check_feature(feature)
    start = time.perf_counter()
    rt = Runtime(subject=session.subject, store=session.store, backend=session.backend)
    state: dict = {"feature": feature}
    state.update(nodes.seed(rt, state))
    dead = bool(state.get("stop_reason"))
    if not dead:
        state.update(nodes.hypothesize(rt, state))
    hyps = state.get("hypotheses", [])
    context = {"hypotheses": hyps, "top": state["seed"]["top"][:3], "strongest_probe": None, "n_probes": 0}
    concl = conclude_from_evidence(context, dead=dead or not hyps)
    if hyps and session.backend.name != "offline":
        # the LLM's own words for its best hypothesis lead the rendered description
        best = next(h for h in hyps if h["id"] == concl["best_hypothesis_ids"][0])
        concl["description"] = f"{best['text']} {concl['description']}"[:1200]
    state.update(
        {
            "conclusion": {**concl, "concluded_by": f"one-shot ({session.backend.name})"},
            "stop_reason": state.get("stop_reason") or "one-shot baseline: no experiments",
            "usage": state.get("usage") or empty_usage(),
            "round": 0,
            "evidence": [],
        }
    )
    data = explanation_record(
        state,
        subject_info=session.subject.info(),
        corpus=session.corpus_name,
        explainer=session.backend.name,
        seconds=time.perf_counter() - start,
    )
    validate_explanation(data)
    return Explanation(data)


def mi_only(feature: int, session: Session, settings: BaselineConfig = BASELINE) -> Explanation:
    """The MI-vocabulary baseline for `feature`: its top MI words as the explanation."""

    session.subject.check_feature(feature)
    start = time.perf_counter()
    stats = session.store.feature_stats(feature)
    words = [w for w, _ in mi_words(session.subject, feature, top=settings.mi_words)]
    text = (
        "Responds to the concept shared by the words "
        + ", ".join(repr(w) for w in words)
        + " (the top words of the MI-vocabulary ranking of its decoder direction)."
    )
    pred = {"type": "token_set", "tokens": words} if words else None
    hyp = new_hypothesis("H1", text, "semantic", "primary", pred, **UNSCORED)
    state = {
        "feature": feature,
        "hypotheses": [hyp],
        "evidence": [],
        "round": 0,
        "timings": {},
        "seed": {"max_activation": stats.max_activation, "frequency": stats.frequency},
        "conclusion": {
            "labels": ["MI words: " + ", ".join(words[: settings.mi_label_words])],
            "description": text,
            "best_hypothesis_ids": ["H1"],
            "concluded_by": "mi-vocabulary",
        },
        "stop_reason": "MI-vocabulary baseline: no LLM, no experiments",
    }
    # the references name the MI ranking, not the session's explainer
    data = explanation_record(
        state,
        subject_info=session.subject.info(),
        corpus=session.corpus_name,
        explainer="mi-vocabulary",
        seconds=time.perf_counter() - start,
    )
    validate_explanation(data)
    return Explanation(data)


BASELINE_FNS = {"one-shot": one_shot, "mi": mi_only}


def run_baseline(
    method: str, features: Iterable[int], out: Path, session: Session, progress: bool = True
) -> dict:
    """Explain `features` with baseline `method`, appending one JSON line per feature to `out`;
    features already done in `out` are skipped (resumable). Failures are recorded as
    `{"feature": {"index": N}, "error": ...}` lines, like `sage batch`."""
    if method not in BASELINE_FNS:
        raise ConfigError(f"unknown baseline {method!r}; choose from {', '.join(BASELINE_FNS)}")
    fn = BASELINE_FNS[method]
    features = list(dict.fromkeys(int(f) for f in features))
    return run_batch(
        features,
        lambda f: fn(f, session).to_dict(),
        Path(out),
        desc=f"explaining ({method})",
        done=done_features,
        progress=progress,
    )
