"""Score explanations: one explanation against its held-out data, or a whole results file (resumable).

A score record (one JSON line) holds `feature`, `method`, `scorer`, `metrics` (name ->
number, or None when not computed), `not_computed` (metric group -> reason), `details`
(counts behind each number, generated texts), `held_out` (sizes) and the scorer's `usage`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from sage.batch import run_batch
from sage.errors import ConfigError, ExplainerError
from sage.evaluation.data import HeldOut, body, evidence_texts, fuzz_items, held_out
from sage.evaluation.metrics import classification_scores, correlation_scores, generative_accuracy, pearson
from sage.evaluation.scorers import NotComputable, Scorer
from sage.io import done_keys, read_jsonl

#: Metric groups (what `--metrics` names) and the numbers each reports.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "generative": ("generative_accuracy",),
    "predictive": ("predictive_r_pooled", "predictive_r_per_context"),
    "detection": ("detection_accuracy", "detection_f1", "detection_balanced_accuracy"),
    "fuzzing": ("fuzzing_accuracy", "fuzzing_f1", "fuzzing_balanced_accuracy"),
    "simulation": ("simulation_r",),
}
#: SAGE's generative accuracy: a text counts when its max activation reaches this x the top-10 mean max.
GENERATIVE_FRACTION = 0.5


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


def metric_keys(groups: Iterable[str]) -> list[str]:
    return [k for g in groups for k in METRIC_GROUPS[g]]


# -- one explanation --------------------------------------------------------------------------------
def _generative(expl, held, scorer, engine, n_texts):
    if held.reference <= 0:
        raise NotComputable("the feature never fires on the corpus: no reference activation")
    texts = scorer.generate(expl, held, n_texts)
    maxima = engine.max_acts(texts, held.feature) if texts else []
    acc = generative_accuracy(maxima, held.reference, GENERATIVE_FRACTION)
    detail = {
        "n_texts": len(texts),
        "threshold": round(GENERATIVE_FRACTION * held.reference, 6),
        "texts": [{"text": t[:300], "max_activation": round(m, 5)} for t, m in zip(texts, maxima)],
    }
    return {"generative_accuracy": acc}, detail


def _predictive(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    if not held.activating:
        raise NotComputable(
            "no held-out activating contexts (the feature never fires outside what the explainer saw)"
        )
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
    if not held.activating or not held.negatives:
        raise NotComputable("detection needs held-out activating and non-activating contexts")
    items = list(held.activating) + list(held.negatives)
    return _classified(
        "detection", scorer.detect(expl, items), [True] * len(held.activating) + [False] * len(held.negatives)
    )


def _fuzzing(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    items = fuzz_items(held)
    if not any(it.correct for it in items) or all(it.correct for it in items):
        raise NotComputable("fuzzing needs held-out activating and non-activating contexts")
    return _classified("fuzzing", scorer.fuzz(expl, items), [it.correct for it in items])


def _simulation(expl, held, scorer, engine, n_texts):  # noqa: ARG001  (one signature per metric)
    contexts = list(held.activating) + list(held.negatives)
    if not held.activating:
        raise NotComputable("no held-out activating contexts")
    sims = scorer.simulate(expl, contexts)
    flat_sim = [v for s in sims for v in s]
    flat_true = [v for c in contexts for v in body(c)]
    return {"simulation_r": pearson(flat_sim, flat_true)}, {
        "n_contexts": len(contexts),
        "n_tokens": len(flat_true),
    }


_GROUP_FN = {
    "generative": _generative,
    "predictive": _predictive,
    "detection": _detection,
    "fuzzing": _fuzzing,
    "simulation": _simulation,
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
    `{"feature": ..., "error": ...}`) on `held`. Every requested metric gets a number or None
    with the reason in `not_computed`.

    engine: runs generated texts through the subject (`ActivationEngine.max_acts`).
    n_texts: texts asked for by generative accuracy (default: the scorer's `n_sentences`).
    """
    groups = list(groups)
    n_texts = n_texts or scorer.settings.n_sentences
    rec = {
        "feature": held.feature,
        "method": method,
        "scorer": scorer.name,
        "metrics": {k: None for k in metric_keys(groups)},
        "not_computed": {},
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
        for g in groups:
            rec["not_computed"][g] = f"no explanation: {expl['error']}"
        rec["error"] = expl["error"]
        return rec
    for g in groups:
        try:
            values, detail = _GROUP_FN[g](expl, held, scorer, engine, n_texts)
        except NotComputable as exc:
            rec["not_computed"][g] = str(exc)
            continue
        except ExplainerError as exc:  # the scorer LLM failed after its retries: nothing is made up
            rec["not_computed"][g] = f"scorer error: {exc}"
            continue
        rec["metrics"].update({k: None if v is None else round(float(v), 6) for k, v in values.items()})
        rec["details"][g] = detail
        for k, v in values.items():
            if v is None:
                rec["not_computed"].setdefault(k, "undefined on this data (e.g. a constant prediction)")
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
        check_subject(expl, store.subject)
        store.subject.check_feature(int(expl["feature"]["index"]))

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
