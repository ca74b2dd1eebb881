"""Score explanations: one explanation against its held-out data, or a whole results file (resumable).

A score record (one JSON line) holds `feature`, `method`, `scorer` (and `scorer_kind`),
`metrics` (name -> number; a failed explanation's number is the metric's floor, None only when
the data or the scorer cannot support the metric), `failures` (metric group or name -> why the
floor was scored), `not_computed` (metric group -> why it is left out), `details`
(counts behind each number, generated texts), `held_out` (sizes) and the scorer's `usage`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from sage.batch import run_batch
from sage.errors import ConfigError, ExplainerError
from sage.evaluation.data import HeldOut, body, evidence_texts, fuzz_items, held_out
from sage.evaluation.intervention import steered_pairs
from sage.evaluation.metrics import (
    FLOOR_ACCURACY,
    FLOOR_PICK,
    FLOOR_R,
    classification_scores,
    correlation_scores,
    generative_accuracy,
    never_fires_scores,
    pearson,
    pick_accuracy,
)
from sage.evaluation.scorers import NotComputable, Scorer, Unsupported
from sage.hypotheses.tiers import STRONG_FRACTION
from sage.io import done_keys, read_jsonl

#: Metric groups (what `--metrics` names) and the numbers each can report. `intervention` is the
#: output-side score (sage/evaluation/intervention.py): can the scorer tell, from the explanation, which
#: of two continuations was generated with the feature amplified. `generative` reports
#: `generative_accuracy` when the scorer writes text (an LLM or `hf:` scorer) and
#: `retrieval_accuracy` when it retrieves corpus snippets instead (the offline scorer): the two
#: measure different things and never share a column.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "generative": ("generative_accuracy", "retrieval_accuracy"),
    "predictive": ("predictive_r_pooled", "predictive_r_per_context"),
    "detection": ("detection_accuracy", "detection_f1", "detection_balanced_accuracy"),
    "fuzzing": ("fuzzing_accuracy", "fuzzing_f1", "fuzzing_balanced_accuracy"),
    "simulation": ("simulation_r",),
    "intervention": ("intervention_accuracy",),
}
#: SAGE's generative accuracy: a text counts when its max activation reaches this x the mean max
#: activation of the top-10 contexts (jiujiubuhejiu/SAGE scripts/evaluate.py, lines 2159-2164:
#: "avg of top 10 max activations / 2"). It is the paper's rule, so it is kept apart from the
#: loop's own activity threshold (agents.runtime.AgentConfig.active_threshold). The loop's conclusion
#: holds its strong tier to the same rule (sage.hypotheses.tiers), so both read it from there.
GENERATIVE_FRACTION = STRONG_FRACTION


class NoData(Exception):
    """The held-out data of this feature cannot support the metric (the same for every method)."""


def parse_metrics(spec: str | None) -> tuple[str, ...]:
    """`generative,predictive,...` -> groups; None/empty = all. Unknown names are a ConfigError."""
    if not spec:
        return tuple(METRIC_GROUPS)
    groups = tuple(dict.fromkeys(g.strip() for g in spec.split(",") if g.strip()))
    bad = [g for g in groups if g not in METRIC_GROUPS]
    if bad or not groups:
        raise ConfigError(
            f"unknown metric(s) {', '.join(bad) or spec!r}; choose from {', '.join(METRIC_GROUPS)}"
        )
    return groups


def generative_key(scorer: Scorer) -> str:
    """The name of the generative group's number for this scorer (see METRIC_GROUPS)."""
    return "generative_accuracy" if scorer.generates_text else "retrieval_accuracy"


def metric_keys(groups: Iterable[str], scorer: Scorer | None = None) -> list[str]:
    """The metric names `groups` report; with a scorer, only the generative key it produces."""
    keys = [k for g in groups for k in METRIC_GROUPS[g]]
    if scorer is None:
        return keys
    other = "retrieval_accuracy" if scorer.generates_text else "generative_accuracy"
    return [k for k in keys if k != other]


# -- one metric group -------------------------------------------------------------------------------
# Each group has a data check (raises NoData: the metric is left out for every method), a floor
# (what a failed explanation scores) and the scoring itself.
def _check_data(group: str, held: HeldOut) -> None:
    if group == "generative" and held.reference <= 0:
        raise NoData("the feature never fires on the corpus: no reference activation")
    if group in ("predictive", "simulation") and not held.activating:
        raise NoData(
            "no held-out activating contexts (the feature never fires outside what the explainer saw)"
        )
    if group == "detection" and (not held.activating or not held.negatives):
        raise NoData("detection needs held-out activating and non-activating contexts")
    if group == "intervention" and held.max_activation <= 0:
        raise NoData("the feature never fires on the corpus: no activation to scale the amplification by")
    if group == "fuzzing":
        items = fuzz_items(held)
        if not any(it.correct for it in items) or all(it.correct for it in items):
            raise NoData("fuzzing needs held-out activating and non-activating contexts")


def _detection_truth(held: HeldOut) -> list[bool]:
    return [True] * len(held.activating) + [False] * len(held.negatives)


def _floor(group: str, held: HeldOut, scorer: Scorer) -> dict[str, float]:
    """What a failed explanation scores on `group`: the scores of "never fires" (see metrics)."""
    if group == "generative":
        return {generative_key(scorer): FLOOR_ACCURACY}
    if group == "predictive":
        return {"predictive_r_pooled": FLOOR_R, "predictive_r_per_context": FLOOR_R}
    if group == "simulation":
        return {"simulation_r": FLOOR_R}
    if group == "intervention":
        return {"intervention_accuracy": FLOOR_PICK}
    actual = _detection_truth(held) if group == "detection" else [it.correct for it in fuzz_items(held)]
    s = never_fires_scores(actual)
    return {f"{group}_{k}": float(s[k]) for k in ("accuracy", "f1", "balanced_accuracy")}


def _generative(expl, held, scorer, engine, n_texts):
    texts = scorer.generate(expl, held, n_texts)
    maxima = engine.max_acts(texts, held.feature) if texts else []
    acc = generative_accuracy(maxima, held.reference, GENERATIVE_FRACTION)
    detail = {
        "n_texts": len(texts),
        "threshold": round(GENERATIVE_FRACTION * held.reference, 6),
        "texts": [{"text": t[:300], "max_activation": round(m, 5)} for t, m in zip(texts, maxima)],
    }
    return {generative_key(scorer): acc}, detail


def _predictive(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    s = correlation_scores(scorer.predict(expl, held.activating), [body(c) for c in held.activating])
    return {"predictive_r_pooled": s["pooled"], "predictive_r_per_context": s["per_context"]}, {
        k: s[k] for k in ("n_contexts", "n_defined", "n_tokens")
    }


def _classified(prefix, predicted, actual):
    s = classification_scores(predicted, actual)
    return (
        {f"{prefix}_{k}": s[k] for k in ("accuracy", "f1", "balanced_accuracy")},
        {k: s[k] for k in ("tp", "fp", "tn", "fn", "n")},
    )


def _detection(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    items = list(held.activating) + list(held.negatives)
    return _classified("detection", scorer.detect(expl, items), _detection_truth(held))


def _fuzzing(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    items = fuzz_items(held)
    return _classified("fuzzing", scorer.fuzz(expl, items), [it.correct for it in items])


def _simulation(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    contexts = list(held.activating) + list(held.negatives)
    sims = scorer.simulate(expl, contexts)
    flat_sim = [v for s in sims for v in s]
    flat_true = [v for c in contexts for v in body(c)]
    return {"simulation_r": pearson(flat_sim, flat_true)}, {
        "n_contexts": len(contexts),
        "n_tokens": len(flat_true),
    }


def _intervention(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    subject = getattr(engine, "subject", None)
    if getattr(subject, "sae", None) is None:
        raise Unsupported("no local SAE weights to steer with (a remote subject)")
    pairs = steered_pairs(subject, held.feature, held.max_activation)
    picks = scorer.pick_steered(expl, pairs)
    return {"intervention_accuracy": pick_accuracy(picks, [p.steered for p in pairs])}, {
        "n_pairs": len(pairs),
        "undecided": sum(p is None for p in picks),
        "pairs": [{**p.to_dict(), "picked": k} for p, k in zip(pairs, picks)],
    }


_GROUP_FN = {
    "generative": _generative,
    "predictive": _predictive,
    "detection": _detection,
    "fuzzing": _fuzzing,
    "simulation": _simulation,
    "intervention": _intervention,
}


def score_explanation(
    expl: dict,
    held: HeldOut,
    scorer: Scorer,
    engine,
    groups: Iterable[str] = tuple(METRIC_GROUPS),
    n_texts: int | None = None,
    method: str = "",
) -> dict:
    """Score one explanation (a dict of prompts/schemas/explanation.json, or a failure line
    `{"feature": ..., "error": ...}`) on `held`.

    Every requested metric ends in one of three ways:
    - a number the scorer produced;
    - the metric's floor (`_floor`), with the reason in `failures`, when the explanation fails
      it: no explanation, no predicate, a predicate that matches nothing, a constant prediction,
      a scorer miscount or a scorer error;
    - None, with the reason in `not_computed`, when the held-out data cannot support it or the
      scorer cannot compute it at all (`Unsupported`): the same for every method on this feature.

    engine: runs generated texts through the subject (`ActivationEngine.max_acts`).
    n_texts: texts asked for by generative accuracy (default: the scorer's `n_sentences`).
    """
    groups = list(groups)
    n_texts = n_texts or scorer.settings.n_sentences
    rec = {
        "feature": held.feature,
        "method": method,
        "scorer": scorer.name,
        "scorer_kind": scorer.kind,
        "metrics": {k: None for k in metric_keys(groups, scorer)},
        "not_computed": {},
        "failures": {},
        "details": {},
        "held_out": {
            "activating": len(held.activating),
            "negatives": len(held.negatives),
            "reference_activation": round(held.reference, 6),
            "seed": held.settings.seed,
        },
    }
    before = scorer.usage()
    start = time.perf_counter()
    if "error" in expl:
        rec["error"] = expl["error"]
    for g in groups:
        try:
            _check_data(g, held)
        except NoData as exc:
            rec["not_computed"][g] = str(exc)
            continue
        floor = _floor(g, held, scorer)
        if "error" in expl:
            rec["metrics"].update(floor)
            rec["failures"][g] = f"no explanation: {expl['error']}"
            continue
        try:
            values, detail = _GROUP_FN[g](expl, held, scorer, engine, n_texts)
        except Unsupported as exc:
            rec["not_computed"][g] = str(exc)
            continue
        except NotComputable as exc:
            rec["metrics"].update(floor)
            rec["failures"][g] = str(exc)
            continue
        except ExplainerError as exc:  # the scorer LLM failed after its retries: nothing is made up
            rec["metrics"].update(floor)
            rec["failures"][g] = f"scorer error: {exc}"
            continue
        rec["details"][g] = detail
        for k, v in values.items():
            if v is None:  # e.g. a constant prediction has no correlation: the explanation's failure
                rec["metrics"][k] = floor[k]
                rec["failures"][k] = "undefined on this data (e.g. a constant prediction): scored the floor"
            else:
                rec["metrics"][k] = round(float(v), 6)
    after = scorer.usage()
    rec["usage"] = {k: round(after[k] - before[k], 6) for k in after}
    rec["seconds"] = round(time.perf_counter() - start, 3)
    return rec


# -- files ------------------------------------------------------------------------------------------
def latest_explanations(path: Path) -> dict[int, dict]:
    """feature -> its explanation in a results file: the last successful line, else the last failure."""
    by_feature: dict[int, dict] = {}
    for rec in read_jsonl(path):
        f = int(rec["feature"]["index"])
        if "error" not in rec or "error" in by_feature.get(f, {"error": ""}):
            by_feature[f] = rec
    return by_feature


def check_subject(expl: dict, subject) -> None:
    """ConfigError unless the explanation is of a feature of `subject` (same model, SAE, hook)."""
    if "error" in expl:
        return
    info, feat = subject.info(), expl["feature"]
    for key in ("model", "sae", "hook_name", "d_sae"):
        if feat.get(key) != info[key]:
            raise ConfigError(
                f"the results explain {key} {feat.get(key)!r} but the loaded subject has {info[key]!r}: "
                "pass the --model / --sae the explanations were made with"
            )


def done_scores(path: Path) -> set[tuple[str, int]]:
    """(method, feature) pairs with a score record that needs no redo (failed explanations are redone)."""
    return done_keys(
        path,
        key=lambda r: (r["method"], int(r["feature"])),
        done=lambda r: "metrics" in r and "error" not in r,
    )


def evaluate_results(
    results: Path,
    out: Path,
    *,
    store,
    scorer: Scorer,
    groups: Iterable[str],
    method: str,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Score every explanation of a results JSONL, appending one score record per line to `out`.
    With `resume`, explanations already scored in `out` are skipped. Returns all records of `out`."""
    results, out = Path(results), Path(out)
    if not results.exists():
        raise ConfigError(f"--results {results} does not exist")
    if out.exists() and not resume:
        raise ConfigError(f"{out} exists: pass --resume to continue it, or choose another --out")
    explanations = latest_explanations(results)
    if not explanations:
        raise ConfigError(f"{results} holds no explanation lines")
    for expl in explanations.values():
        store.subject.check_feature(int(expl["feature"]["index"]))
        check_subject(expl, store.subject)

    def score(f: int) -> dict:
        held = held_out(store, f, exclude_texts=evidence_texts([explanations[f]]))
        return score_explanation(explanations[f], held, scorer, store.engine, groups, method=method)

    # a scoring failure is not a property of the explanation: it stops the run (errors=())
    run_batch(
        sorted(explanations),
        score,
        out,
        desc=f"scoring ({scorer.name})",
        done=done_scores if resume else None,
        key=lambda f: (method, f),
        errors=(),
        progress=progress,
    )
    return read_jsonl(out)
