"""Python API: `explain` one feature, `explain_batch` many; both run the agents/ graph."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from langgraph.checkpoint.sqlite import SqliteSaver

import prompts
from agents import BudgetConfig, Runtime, build_graph
from agents.graph import recursion_limit
from sage import config
from sage.batch import run_batch
from sage.data.corpus import load_corpus
from sage.errors import ConfigError
from sage.intervention.output import output_section
from sage.io import done_keys
from sage.llm import make_backend
from sage.model.subject import load_subject, quiet_transformers
from sage.store.activation_store import ActivationStore
from sage.version import __version__


@dataclass(frozen=True)
class Explanation:
    """A tested explanation; `data` validates against prompts/schemas/explanation.json."""

    data: dict

    @property
    def labels(self) -> list[str]:
        return self.data["labels"]

    @property
    def description(self) -> str:
        return self.data["description"]

    @property
    def predicate(self) -> dict | None:
        return self.data.get("predicate")

    @property
    def output(self) -> dict | None:
        """What the feature does to the model's output, as measured by intervening on it (promoted and
        suppressed tokens with their log-prob shifts, the edit, example continuations); None when not
        measured (a dead feature, a subject without local SAE weights)."""
        return self.data.get("output")

    @property
    def feature(self) -> int:
        return self.data["feature"]["index"]

    @property
    def failure(self) -> str | None:
        """Why the explanation failed (the explainer's error, as recorded in `stop_reason`), or None
        when it did not fail. A failed explanation's labels say "explanation failed"."""
        stop = self.data.get("stop_reason") or ""
        return stop.removeprefix("explainer_error:").strip() if stop.startswith("explainer_error") else None

    def to_dict(self) -> dict:
        return self.data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, ensure_ascii=False)


def validate_explanation(data: dict) -> None:
    """Raise ValueError naming the first schema violation."""
    errors = sorted(prompts.validator("explanation").iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise ValueError(
            f"explanation does not match its schema at {'/'.join(map(str, e.path))}: {e.message}"
        )


@dataclass
class Session:
    """A subject + activation store + explainer, loaded once and shared by many explanations."""

    subject: object
    store: object
    backend: object
    corpus_name: str
    #: one forward pass at a time across every explanation of this session (the engine's hook
    #: capture is not re-entrant, and `explain_batch --concurrency` runs features in threads)
    model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        model: str = config.DEFAULT,
        sae: str = config.DEFAULT,
        corpus: str = config.DEFAULT,
        explainer: str | None = None,
        dtype: str | None = None,
        subject: str | None = None,
        *,
        device: str | None = None,
        mine: bool = True,
    ) -> Session:
        """subject: `neuronpedia:MODEL/SOURCE` for a Neuronpedia SAE (`sage.neuronpedia.source`) in
        place of model / sae / corpus / dtype. device: auto (None: cuda when present), cpu, cuda...
        mine=False: a store that is not mined yet is an error rather than mined here (a batch worker
        uses the store its driver mined; `sage.distributed`)."""
        backend = make_backend(explainer)  # fail fast on a bad spec / missing key, before loading the model
        backend.check()  # and on a local server that is not running
        if subject is not None:
            from sage.neuronpedia.source import open_source

            if model != config.DEFAULT or sae != config.DEFAULT:
                raise ConfigError(f"give --subject {subject} or --model / --sae, not both")

            store = open_source(subject)
            return cls(store.subject, store, backend, store.corpus_name)
        quiet_transformers()
        subject = load_subject(model, sae, dtype=dtype, device=device)
        c = load_corpus(corpus)
        if mine:
            store = ActivationStore.load_or_mine(subject, c)
        else:
            store = ActivationStore(subject, c)
            if not store.complete():
                raise ConfigError(
                    f"the activation store {store.dir} is not mined here: run `sage mine` first, "
                    "with SAGE_HOME on storage every worker reads (docs/scaling.md)"
                )
        return cls(subject, store, backend, c.name)


def _checkpointer(path: Path):

    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))


def explain(
    feature: int,
    *,
    model: str = config.DEFAULT,
    sae: str = config.DEFAULT,
    corpus: str = config.DEFAULT,
    explainer: str | None = None,
    device: str | None = None,
    max_rounds: int = 3,
    budget_usd: float = 1.0,
    max_llm_tokens: int | None = None,
    session: Session | None = None,
    checkpoint_db: Path | None = None,
    resume: bool = False,
    on_event: Callable[[str], None] | None = None,
) -> Explanation:
    """Explain one feature with the agent loop.

    With `checkpoint_db` every node's output is saved to SQLite; `resume=True` continues an
    interrupted run from its last finished node instead of starting again (see `_resume_point`).
    An explainer that fails during the run does not raise: the Explanation says "explanation
    failed: REASON" and `Explanation.failure` gives the reason (the CLI exits 3 on it).
    """

    session = session or Session.open(model, sae, corpus, explainer, device=device)
    subject = session.subject
    subject.check_feature(feature)
    budgets = BudgetConfig(
        max_rounds=max_rounds,
        max_usd=budget_usd,
        **({"max_llm_tokens": max_llm_tokens} if max_llm_tokens else {}),
    )
    rt = Runtime(
        subject=subject,
        store=session.store,
        backend=session.backend,
        budgets=budgets,
        on_event=on_event,
        model_lock=session.model_lock,
    )
    saver = _checkpointer(checkpoint_db) if checkpoint_db else None
    graph = build_graph(rt, checkpointer=saver)
    thread = f"{subject.fingerprint()}:{session.corpus_name}:{feature}:{session.backend.name}:{max_rounds}"
    cfg = {"configurable": {"thread_id": thread}, "recursion_limit": recursion_limit(rt)}
    start = time.perf_counter()
    point = _resume_point(graph, cfg) if saver is not None and resume else None
    if point is None:
        if saver is not None:
            saver.delete_thread(thread)
        final = graph.invoke({"feature": feature}, cfg)
    elif point[0] == "done":
        final = point[1]
    else:
        final = graph.invoke(None, point[1])
    data = explanation_record(
        final,
        subject_info=subject.info(),
        corpus=session.corpus_name,
        explainer=session.backend.name,
        seconds=time.perf_counter() - start,
    )
    validate_explanation(data)
    return Explanation(data)


def _resume_point(graph, cfg: dict) -> tuple[str, dict] | None:
    """How a checkpointed run goes on: ("continue", config to invoke from), ("done", final state),
    or None when there is nothing saved.

    A run that stopped part-way (killed, Ctrl-C, an exception in a node) continues after its last
    finished node. A run that ended on an explainer failure concluded from partial evidence; resuming
    it (once the key, network or quota is fixed) goes back to the checkpoint before the node whose
    call failed, so that node and the ones after it run again and none before it does. Any other
    finished run is returned as saved, without new calls.
    """
    snap = graph.get_state(cfg)
    if not snap.values:
        return None
    if snap.next:
        return "continue", cfg
    if not str(snap.values.get("stop_reason") or "").startswith("explainer_error"):
        return "done", snap.values
    for past in graph.get_state_history(cfg):  # newest first
        if past.next and not str(past.values.get("stop_reason") or "").startswith("explainer_error"):
            return "continue", {**cfg, "configurable": past.config["configurable"]}
    return None


def explanation_record(
    state: dict, *, subject_info: dict, corpus: str, explainer: str, seconds: float
) -> dict:
    """The explanation dict (prompts/schemas/explanation.json) of a finished agent state.

    state: the graph's final state (feature, seed, hypotheses, evidence, conclusion, usage, ...);
    subject_info: `Subject.info()`; corpus, explainer: the names recorded in `references`
    (the explainer is the backend's name, or what stood in for it, e.g. a baseline's method);
    seconds: the wall time the explanation took.
    """
    seed, concl, info = state["seed"], state["conclusion"], subject_info
    by_id = {h["id"]: h for h in state.get("hypotheses", [])}
    best = [by_id[i] for i in concl.get("best_hypothesis_ids", []) if i in by_id]
    evidence = [
        {
            "probe_id": e["probe_id"],
            "text": e["text"],
            "purpose": e["purpose"],
            "source": e.get("source", ""),
            "token": e.get("token"),
            "max_activation": e["max_activation"],
            "normalized": e["normalized"],
            "max_token": e["max_token"],
            "round": e["round"],
            "hypothesis_id": e["hypothesis_id"],
            "expect": e["expect"],
            "tokens": e["tokens"],
            # raw activations; a run checkpointed before they were recorded has only normalised ones
            "activations": e.get("raw_acts"),
            "sink_positions": e.get("sink_positions"),
            "supports": [e["hypothesis_id"]] if e["agrees"] else [],
            "refutes": [] if e["agrees"] else [e["hypothesis_id"]],
        }
        for e in state.get("evidence", [])
    ]
    hyp_fields = (
        "id",
        "text",
        "kind",
        "role",
        "predicate",
        "concept",
        "status",
        "precision",
        "recall",
        "heldout_r",
        "heldout_f1",
        "history",
    )
    hyps = [{k: h.get(k) for k in hyp_fields} for h in state.get("hypotheses", [])]
    usage = state.get("usage", {})
    return {
        "feature": {
            "model": info["model"],
            "sae": info["sae"],
            "hook_name": info["hook_name"],
            "index": state["feature"],
            "d_sae": info["d_sae"],
            "max_activation": seed["max_activation"],
            "frequency": min(seed["frequency"], 1.0),
        },
        "labels": concl["labels"],
        "description": concl["description"],
        "predicate": best[0].get("predicate") if best else None,
        "hypotheses": hyps,
        "evidence": evidence,
        "output": (
            output_section(state["output_hypotheses"], state["output_results"])
            if state.get("output_results") and state.get("output_hypotheses")
            else None
        ),
        "scores": {f"{h['id']}_f1": h.get("f1") for h in state.get("hypotheses", [])},
        "cost": {
            "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "usd": usage.get("usd", 0.0),
            "llm_calls": usage.get("llm_calls", 0),
            "probes": state.get("probes_run", 0),
            # of which the output experiments' prompt texts (sage.intervention.output)
            "interventions": (state.get("output_results") or {}).get("forwards", 0),
        },
        "stop_reason": state.get("stop_reason") or "concluded",
        "rounds": state.get("round", 0),
        "timings": {**state.get("timings", {}), "total": round(seconds, 3)},
        "concluded_by": concl.get("concluded_by", ""),
        "references": {
            "model": info["model"],
            "sae": info["sae"],
            "hook_name": info["hook_name"],
            "corpus": corpus,
            "explainer": explainer,
            "sage_version": __version__,
        },
    }


# -- batch ------------------------------------------------------------------------------------------
def done_features(path: Path) -> set[int]:
    """Features with a successful line in a results file (torn or failed lines are not done)."""
    return done_keys(
        path,
        key=lambda rec: int(rec["feature"]["index"]),
        done=lambda rec: "error" not in rec and "labels" in rec,
    )


def explanation_line(feature: int, session: Session, **explain_kwargs) -> dict:
    """The results-file line of one feature: its explanation, or, when the explainer failed,
    `{"feature": {"index": N}, "error": "explanation failed: ...", "partial": <the explanation>}`."""
    expl = explain(feature, session=session, **explain_kwargs)
    if expl.failure is not None:
        error = f"explanation failed: {expl.failure}"
        return {"feature": {"index": feature}, "error": error, "partial": expl.data}
    return expl.to_dict()


class FeatureExecutor(Protocol):
    """Explains features somewhere else (`sage.distributed.batch.RayExplainers`): calling it blocks until
    the feature's line (`explanation_line`, or a `sage.batch.failure_record`) is back; `slots` calls
    may run at once."""

    slots: int

    def __call__(self, feature: int, **explain_kwargs) -> dict: ...


def explain_batch(
    features: Iterable[int],
    out: Path,
    *,
    session: Session | None = None,
    concurrency: int = 1,
    resume: bool = False,
    progress: bool = True,
    executor: FeatureExecutor | None = None,
    **explain_kwargs,
) -> dict:
    """Explain `features`, appending one JSON line per feature to `out` as each completes.

    A failing feature is recorded as `{"feature": {"index": N}, "error": ...}` and the batch
    goes on; when the explainer failed, the line also keeps the failed explanation under
    `partial` (its evidence and cost). With `resume`, features already done in `out` are skipped,
    and failed ones are tried again. With `executor`, features are explained by it (`executor.slots`
    at once; e.g. Ray workers) while this process alone writes `out`. Returns a summary.
    """
    features = list(dict.fromkeys(int(f) for f in features))
    session = session or Session.open(
        explain_kwargs.pop("model", config.DEFAULT),
        explain_kwargs.pop("sae", config.DEFAULT),
        explain_kwargs.pop("corpus", config.DEFAULT),
        explain_kwargs.pop("explainer", None),
        device=explain_kwargs.pop("device", None),
    )
    for f in features:
        session.subject.check_feature(f)
    out = Path(out)
    if out.exists() and not resume:
        raise ConfigError(f"{out} exists: pass --resume to continue it, or choose another --out")
    cost = {"input_tokens": 0, "output_tokens": 0, "usd": 0.0}

    def add_cost(rec: dict) -> None:
        spent = rec.get("partial", rec).get("cost")  # a failed explanation spent tokens too
        if spent:
            for k in cost:
                cost[k] += spent[k]

    def work(f: int) -> dict:
        if executor is not None:
            return executor(f, **explain_kwargs)
        return explanation_line(f, session, **explain_kwargs)

    start = time.perf_counter()
    counts = run_batch(
        features,
        work,
        out,
        desc="explaining",
        done=done_features if resume else None,
        workers=executor.slots if executor is not None else max(1, concurrency),
        on_record=add_cost,
        progress=progress,
    )
    summary = {**counts, **cost}
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["usd"] = round(summary["usd"], 6)
    return summary
