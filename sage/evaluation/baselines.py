"""Baselines SAGE is compared against (same subject, same store, same explainer, same scorer).

- `one-shot`: the baseline of the SAGE paper (arXiv 2511.20820), i.e. what OpenAI's explainer
  (openai/automated-interpretability) and Neuronpedia produce: ONE explainer call on the
  feature's top-activating contexts, rendered as token / activation pairs (activations scaled
  to integers 0-10 by the largest one shown), and the single explanation it returns. No MI words,
  no token statistics, no quantile samples, no choice among candidates by in-sample F1. The
  `offline` explainer's equivalent reads the same pairs and names the tokens at the peaks.
- `no-probe`: SAGE without experiments (an ablation): the agent's `seed` and `hypothesize` nodes
  (top and quantile contexts, MI words, trigger-token statistics; 3-5 competing hypotheses), the
  hypotheses checked on those same contexts and the best one (token-level F1) concluded. What
  `sage` adds to this is exactly the probing.
- `mi`: the top words of the MI-vocabulary ranking (Wu et al., arXiv 2502.15576) as the label,
  no LLM, no contexts. Those words describe what the feature's decoder direction promotes (the
  output side); the input-side scorers can only test them as a token set (the feature fires on
  these words), which is not what the paper claims of them. docs/methods.md says so; the output
  side is scored once the intervention score exists.
- `neuronpedia`: Neuronpedia's own explanation of the feature, text only: the first of the SAGE
  paper's type (`oai_token-act-pair`), else the first listed (`sage.neuronpedia.interop.pick_explanation`).
  From the feature endpoint for a Neuronpedia subject, or from a `sage import` results file
  (`imported`) for a local subject whose SAE is the one Neuronpedia explained. It has no predicate,
  so the offline scorer scores it at the floor; an LLM scorer reads its text.
- `sage` (not here): the full loop, `sage.runs.explain`.

All write Explanation dicts that validate against prompts/schemas/explanation.json.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import prompts
from agents import Runtime, nodes
from agents.runtime import AgentConfig
from agents.state import empty_usage
from sage.batch import run_batch
from sage.errors import ConfigError, ExplainerError, require_ints
from sage.hypotheses.conclusion import conclude_from_evidence
from sage.hypotheses.records import UNSCORED, new_hypothesis
from sage.io import read_jsonl
from sage.llm.base import LLMRequest
from sage.model.positions import skip_positions
from sage.neuronpedia.interop import pick_explanation
from sage.runs import Explanation, Session, done_features, explanation_record, validate_explanation
from sage.vocab.lookup import mi_words

#: the scale OpenAI's explainer shows activations on (integers 0..10, the largest shown = 10)
PAIR_SCALE = 10


@dataclass(frozen=True)
class BaselineConfig:
    #: MI words in the `mi` baseline's predicate (its label shows the first few)
    mi_words: int = 10
    #: MI words shown in the `mi` baseline's label
    mi_label_words: int = 5
    #: top-activating contexts the one-shot explainer reads (the agent's seed count, so that the
    #: held-out data excludes exactly what each method saw)
    one_shot_contexts: int = AgentConfig().n_top

    def __post_init__(self) -> None:
        require_ints(self, "mi_words", "mi_label_words", "one_shot_contexts")


BASELINE = BaselineConfig()


def token_activation_pairs(contexts: Sequence) -> list[dict]:
    """Contexts as OpenAI's explainer shows them: per context its tokens (sink removed) and
    activations scaled to integers 0..PAIR_SCALE by the largest activation over all of them.

    contexts: objects with `.tokens` (list[str]) and `.acts` (raw activations, same length).
    Returns [{"tokens": [...], "acts": [int, ...]}].
    """
    skip = skip_positions()
    peak = max((max(c.acts[skip:], default=0.0) for c in contexts), default=0.0)
    scale = PAIR_SCALE / peak if peak > 0 else 0.0
    return [
        {"tokens": list(c.tokens[skip:]), "acts": [max(0, round(a * scale)) for a in c.acts[skip:]]}
        for c in contexts
    ]


def render_pairs(pairs: Sequence[dict]) -> str:
    """The pairs as prompt text: one `token<TAB>activation` line per token, contexts separated."""
    blocks = []
    for i, p in enumerate(pairs, 1):
        lines = "\n".join(f"{t!r}\t{a}" for t, a in zip(p["tokens"], p["acts"]))
        blocks.append(f"<context {i}>\n{lines}\n</context {i}>")
    return "\n".join(blocks)


def _finish(state: dict, session: Session, start: float, explainer: str | None = None) -> Explanation:
    """The validated Explanation of a baseline's final state (`start`: its perf_counter start)."""
    data = explanation_record(
        state,
        subject_info=session.subject.info(),
        corpus=session.corpus_name,
        explainer=explainer or session.backend.name,
        seconds=time.perf_counter() - start,
    )
    validate_explanation(data)
    return Explanation(data)


def one_shot(feature: int, session: Session, settings: BaselineConfig = BASELINE) -> Explanation:
    """The one-shot baseline for `feature` (see the module docstring): one explainer call, one explanation."""

    session.subject.check_feature(feature)
    start = time.perf_counter()
    stats = session.store.feature_stats(feature)
    seed = {"max_activation": stats.max_activation, "frequency": stats.frequency}
    state: dict = {"feature": feature, "seed": seed, "evidence": [], "round": 0, "timings": {}}
    if stats.max_activation <= 0:
        state.update(
            hypotheses=[],
            usage=empty_usage(),
            conclusion={
                **conclude_from_evidence({"hypotheses": [], "top": []}, dead=True),
                "concluded_by": "one-shot",
            },
            stop_reason="dead feature: never active on the corpus",
        )
    else:
        pairs = token_activation_pairs(session.store.top(feature, settings.one_shot_contexts))
        info = session.subject.info()
        messages = [
            {"role": "system", "content": prompts.template("system")},
            {
                "role": "user",
                "content": prompts.template("one_shot").format(
                    feature=feature,
                    hook_name=info["hook_name"],
                    model=info["model"],
                    pairs=render_pairs(pairs),
                ),
            },
        ]
        req = LLMRequest(
            task="one_shot", messages=messages, schema_name="one_shot", context={"top": pairs}, max_tokens=600
        )
        resp = session.backend.complete(req)  # a failure propagates: run_batch records it as failed
        text, pred = resp.data["explanation"], resp.data.get("predicate")
        hyp = new_hypothesis(
            "H1",
            text,
            "lexical" if pred and pred.get("type") == "token_set" else "semantic",
            "primary",
            pred,
            **UNSCORED,
        )
        u = resp.usage
        state.update(
            hypotheses=[hyp],
            usage={
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "usd": round(u.usd, 6),
                "llm_calls": resp.attempts,
            },
            conclusion={
                "labels": [text[:200]],
                "description": text,
                "best_hypothesis_ids": ["H1"],
                "concluded_by": f"one-shot ({session.backend.name})",
            },
            stop_reason="one-shot baseline: one explainer call on the top contexts, no experiments",
        )
    return _finish(state, session, start)


def no_probe(feature: int, session: Session) -> Explanation:
    """The no-probe ablation for `feature` (see the module docstring): seed and hypotheses, no experiments."""

    session.subject.check_feature(feature)
    start = time.perf_counter()
    rt = Runtime(subject=session.subject, store=session.store, backend=session.backend)
    state: dict = {"feature": feature}
    state.update(nodes.seed(rt, state))
    dead = bool(state.get("stop_reason"))
    if not dead:
        state.update(nodes.hypothesize(rt, state))
    failure = str(state.get("stop_reason") or "")
    if failure.startswith("explainer_error"):  # as in one_shot: run_batch records the feature as failed
        raise ExplainerError(failure.removeprefix("explainer_error:").strip())
    hyps = state.get("hypotheses", [])
    context = {"hypotheses": hyps, "top": state["seed"]["top"][:3], "strongest_probe": None, "n_probes": 0}
    concl = conclude_from_evidence(context, dead=dead)
    if hyps and session.backend.name != "offline":
        # the LLM's own words for its best hypothesis lead the rendered description
        best = next(h for h in hyps if h["id"] == concl["best_hypothesis_ids"][0])
        concl["description"] = f"{best['text']} {concl['description']}"[:1200]
    state.update(
        {
            "conclusion": {**concl, "concluded_by": f"no-probe ({session.backend.name})"},
            "stop_reason": state.get("stop_reason")
            or "no-probe ablation: seed and hypotheses, no experiments",
            "usage": state.get("usage") or empty_usage(),
            "round": 0,
            "evidence": [],
        }
    )
    return _finish(state, session, start)


def mi_only(feature: int, session: Session, settings: BaselineConfig = BASELINE) -> Explanation:
    """The MI-vocabulary baseline for `feature`: its top MI words as the explanation."""

    session.subject.check_feature(feature)
    start = time.perf_counter()
    stats = session.store.feature_stats(feature)
    words = [w for w, _ in mi_words(session.subject, feature, top=settings.mi_words)]
    if not words:
        raise ConfigError("no MI words: the MI ranking needs the SAE's decoder and the model's unembedding")
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
    return _finish(state, session, start, explainer="mi-vocabulary")


def neuronpedia(feature: int, session: Session, imported: dict[int, dict] | None = None) -> Explanation:
    """Neuronpedia's explanation of `feature` (see the module docstring); `imported`: feature -> an
    explanation record of `sage import`."""
    session.subject.check_feature(feature)
    start = time.perf_counter()
    if imported is not None:
        rec = imported.get(feature)
        if rec is None:
            raise ConfigError(f"the imported Neuronpedia results hold no explanation of feature {feature}")
        text, who = rec["labels"][0], rec["references"]["explainer"]
    else:
        listed = getattr(session.store, "neuronpedia_explanations", None)
        if listed is None:
            raise ConfigError(
                "the neuronpedia method needs a Neuronpedia subject (--subject neuronpedia:MODEL/SOURCE) "
                "or Neuronpedia's explanations imported with `sage import` (--neuronpedia-results)"
            )
        found = pick_explanation(listed(feature))
        if found is None:
            raise ConfigError(f"Neuronpedia has no explanation of feature {feature}")
        text, who = found["description"], found.get("explanationModelName") or "unknown"
    stats = session.store.feature_stats(feature)
    state = {
        "feature": feature,
        "hypotheses": [new_hypothesis("H1", text, "semantic", "primary", None, **UNSCORED)],
        "evidence": [],
        "round": 0,
        "timings": {},
        "seed": {"max_activation": stats.max_activation, "frequency": stats.frequency},
        "conclusion": {
            "labels": [text[:200]],
            "description": text,
            "best_hypothesis_ids": ["H1"],
            "concluded_by": f"neuronpedia ({who})",
        },
        "stop_reason": "Neuronpedia's explanation: imported, no experiments",
    }
    return _finish(state, session, start, explainer=f"neuronpedia:{who}")


BASELINE_FNS = {"one-shot": one_shot, "no-probe": no_probe, "mi": mi_only, "neuronpedia": neuronpedia}


def run_baseline(
    method: str,
    features: Iterable[int],
    out: Path,
    session: Session,
    progress: bool = True,
    imported: Path | None = None,
) -> dict:
    """Explain `features` with baseline `method`, appending one JSON line per feature to `out`;
    features already done in `out` are skipped (resumable). Failures are recorded as
    `{"feature": {"index": N}, "error": ...}` lines, like `sage batch`. imported: for `neuronpedia`,
    a `sage import` results file to take Neuronpedia's explanations from."""
    if method not in BASELINE_FNS:
        raise ConfigError(f"unknown baseline {method!r}; choose from {', '.join(BASELINE_FNS)}")
    fn = BASELINE_FNS[method]
    if method == "neuronpedia" and imported is not None:
        if not Path(imported).exists():
            raise ConfigError(f"--neuronpedia-results {imported} does not exist")
        by_feature = {int(r["feature"]["index"]): r for r in read_jsonl(Path(imported)) if "error" not in r}
        fn = functools.partial(neuronpedia, imported=by_feature)
    features = list(dict.fromkeys(int(f) for f in features))
    return run_batch(
        features,
        lambda f: fn(f, session).to_dict(),
        Path(out),
        desc=f"explaining ({method})",
        done=done_features,
        progress=progress,
    )
