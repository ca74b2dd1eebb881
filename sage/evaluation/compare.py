"""Compare explanation methods: explain the same features with each, score every explanation
with the same scorer on the same held-out data, and report.

Everything lands in one folder, and a re-run with the same folder resumes:

    compare.json               what was asked (a re-run must ask the same)
    explanations_<method>.jsonl one explanation per line (sage: `sage.runs.explain_batch`)
    scores.jsonl               one score record per (method, feature)
    report.md / summary.json   per metric: mean, 95% bootstrap CI, paired win rates
    scores.png                 score distributions
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from sage.errors import ConfigError
from sage.evaluation.baselines import run_baseline
from sage.evaluation.data import HELD_OUT, evidence_texts, held_out
from sage.evaluation.methods import EXTRA_METHODS, METHODS
from sage.evaluation.report import markdown_table, plot_distributions, summarize
from sage.evaluation.run import (
    METRIC_GROUPS,
    done_scores,
    latest_explanations,
    metric_keys,
    score_explanation,
)
from sage.evaluation.scorers import SCORER, make_scorer
from sage.io import append_record, drop_torn_tail, open_append, read_jsonl
from sage.runs import explain_batch


def parse_methods(spec: str | None) -> tuple[str, ...]:
    if not spec:
        return METHODS
    methods = tuple(dict.fromkeys(m.strip() for m in spec.split(",") if m.strip()))
    known = METHODS + EXTRA_METHODS
    bad = [m for m in methods if m not in known]
    if bad or not methods:
        raise ConfigError(f"unknown method(s) {', '.join(bad) or spec!r}; choose from {', '.join(known)}")
    return methods


def _manifest(features, session, scorer_spec, groups, explain_kwargs) -> dict:
    return {
        "features": list(features),
        "subject": session.subject.fingerprint(),
        "corpus": session.corpus_name,
        "explainer": session.backend.name,
        "explain": explain_kwargs,
        "scorer": scorer_spec,
        "metrics": list(groups),
        "held_out": dataclasses.asdict(HELD_OUT),
        "scorer_settings": dataclasses.asdict(SCORER),
    }


def _check_manifest(out_dir: Path, manifest: dict) -> None:
    path = out_dir / "compare.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in manifest if old.get(k) != manifest[k]]
        if changed:
            raise ConfigError(
                f"{out_dir} holds a comparison made with different {', '.join(changed)}; "
                "re-run with the same arguments to resume it, or choose another --out"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2))


def run_compare(
    features: Sequence[int],
    out_dir: Path,
    session,
    *,
    methods: Sequence[str] = METHODS,
    scorer_spec: str = "offline",
    groups: Sequence[str] = tuple(METRIC_GROUPS),
    explain_kwargs: dict | None = None,
    progress: bool = True,
    neuronpedia_results: Path | None = None,
    executor=None,
) -> dict:
    """Explain `features` with each method, score them, write the report. Resumable (see module docstring).

    explain_kwargs go to `sage.runs.explain` for the `sage` method (max_rounds, budget_usd, max_llm_tokens).
    neuronpedia_results: `sage import` results holding Neuronpedia's explanations, for the
    `neuronpedia` method on a local subject (a Neuronpedia subject has them from its feature endpoint).
    executor: explains the `sage` method's features elsewhere (`sage.runs.FeatureExecutor`, e.g. Ray
    workers; `sage compare --ray`). Returns {"summary", "report", "plot", "seconds"}.
    """

    out_dir = Path(out_dir)
    features = list(dict.fromkeys(int(f) for f in features))
    for f in features:
        session.subject.check_feature(f)
    explain_kwargs = dict(explain_kwargs or {})
    scorer = make_scorer(scorer_spec, session.store)  # fail fast on a bad spec, before any explaining
    _check_manifest(out_dir, _manifest(features, session, scorer_spec, groups, explain_kwargs))
    start = time.perf_counter()

    explanations = {}
    for m in methods:
        path = out_dir / f"explanations_{m}.jsonl"
        if m == "sage":
            explain_batch(
                features,
                path,
                session=session,
                resume=True,
                progress=progress,
                executor=executor,
                **explain_kwargs,
            )
        else:
            run_baseline(m, features, path, session, progress=progress, imported=neuronpedia_results)
        explanations[m] = latest_explanations(path)

    scores_path = out_dir / "scores.jsonl"
    drop_torn_tail(scores_path)  # before reading what is done: a record that lost its newline is redone
    done = done_scores(scores_path)
    store = session.store
    with open_append(scores_path) as fh:
        for f in tqdm(
            features, desc=f"scoring ({scorer.name})", unit="feature", disable=not progress, file=sys.stderr
        ):
            todo = [m for m in methods if (m, f) not in done]
            if not todo:
                continue
            # one held-out set per feature, shared by every method: none of them saw any of it
            held = held_out(store, f, exclude_texts=evidence_texts(explanations[m].get(f) for m in methods))
            for m in todo:
                expl = explanations[m].get(f) or {
                    "feature": {"index": f},
                    "error": "no explanation was produced",
                }
                append_record(fh, score_explanation(expl, held, scorer, store.engine, groups, method=m))

    wanted = set(features)
    records = [r for r in read_jsonl(scores_path) if r["method"] in methods and int(r["feature"]) in wanted]
    return write_report(
        records,
        methods,
        metric_keys(groups, scorer),
        out_dir,
        header=_header(session, scorer.name, len(features)),
        seconds=time.perf_counter() - start,
    )


def _header(session, scorer_name: str, n: int) -> str:
    info = session.subject.info()
    return (
        f"# SAGE comparison\n\nSubject: {info['model']}, SAE {info['sae']} at {info['hook_name']} "
        f"({info['d_sae']} features); corpus {session.corpus_name}; explainer {session.backend.name}; "
        f"scorer {scorer_name}; {n} features.\n"
        f"Held-out data per feature: {HELD_OUT.per_quantile} contexts from "
        f"each of {HELD_OUT.n_quantiles} activation bins (top-{HELD_OUT.exclude_top} and every context an "
        f"explainer saw excluded, seed {HELD_OUT.seed}) and {HELD_OUT.n_negatives} non-activating contexts.\n"
        "Methods: one-shot = one explainer call on the top contexts' token/activation pairs (the SAGE "
        "paper's baseline); no-probe = SAGE's seed and hypotheses without experiments (an ablation); "
        "mi = the MI-vocabulary words (an output-side description, scored here on the input side only); "
        "sage = the full loop; neuronpedia = Neuronpedia's own explanation (text only, docs/neuronpedia.md). "
        "Definitions and sources: docs/methods.md.\n"
    )


def write_report(
    records: list[dict],
    methods: Sequence[str],
    keys: Sequence[str],
    out_dir: Path,
    header: str = "",
    seconds: float | None = None,
) -> dict:
    """report.md, summary.json and scores.png in `out_dir` from score records."""
    out_dir = Path(out_dir)
    summary = summarize(records, methods, keys)
    table = markdown_table(summary)
    (out_dir / "report.md").write_text((header + "\n" if header else "") + table)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    plot = plot_distributions(records, methods, keys, out_dir / "scores.png")
    return {
        "summary": summary,
        "table": table,
        "report": str(out_dir / "report.md"),
        "plot": str(plot) if plot else None,
        "seconds": None if seconds is None else round(seconds, 1),
    }
