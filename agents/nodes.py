"""The nodes of the SAGE loop. Each takes the state and returns a partial update.

Only `probe` (and `seed`, which reads the activation store) touch the model; the
explainer is reached only through `ask`, which enforces the token / USD budgets
and records usage. Every activation in the state came from the model.

A node is written as a body returning (update, progress message); the `node()`
decorator adds its timing and its event, so every node reports the same way.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import prompts
from agents import summaries
from agents.routing import DECIDED, budget_exhausted, review_decision
from agents.runtime import AgentConfig, Runtime
from agents.seed_draw import draw_seed
from agents.state import AgentState, Hypothesis, Observation, Probe, SeedContext, Usage, empty_usage
from sage.errors import ExplainerError
from sage.hypotheses import scoring as ev
from sage.hypotheses.conclusion import conclude_from_evidence, failed_conclusion, quote_tokens
from sage.hypotheses.experiments import concept_probes, concept_test_summary
from sage.hypotheses.predicates import norm_token, trigger_words
from sage.hypotheses.records import REFINEMENT_REJECTED, new_hypothesis
from sage.hypotheses.tiers import demote_below, name_firing, strong_level
from sage.intervention.effects import EFFECTS
from sage.intervention.output import judge, output_hypotheses, own_prompts, run_experiments
from sage.llm.base import LLMRequest
from sage.model.positions import peak_position, skip_positions

#: a node's body: (runtime, state) -> (partial update, progress message or None)
NodeBody = Callable[[Runtime, AgentState], tuple[AgentState, str | None]]


def node(timed: bool = True) -> Callable[[NodeBody], Callable[[Runtime, AgentState], AgentState]]:
    """Decorator for a node body: adds the node's wall time to `timings[name]` (when `timed`)
    and appends its message to `events`, reporting it to `rt.on_event` first.

    The time is taken before the message is reported, so a slow `on_event` is not counted.
    """

    def wrap(body: NodeBody) -> Callable[[Runtime, AgentState], AgentState]:
        name = body.__name__

        @functools.wraps(body)
        def run(rt: Runtime, state: AgentState) -> AgentState:
            start = time.perf_counter()
            update, msg = body(rt, state)
            if timed:
                timings = dict(state.get("timings", {}))
                timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 3)
                update["timings"] = timings
            if msg is not None:
                if rt.on_event:
                    rt.on_event(msg)
                update["events"] = [*state.get("events", []), msg]
            return update

        return run

    return wrap


def ask(
    rt: Runtime,
    state: AgentState,
    task: str,
    template: str,
    fields: dict,
    context: dict,
    schema: str,
    max_tokens: int = 1200,
) -> tuple[dict | None, Usage, str | None]:
    """Ask the explainer. Returns (data or None, new usage, stop reason or None).

    A budget already spent means no call (data None, stop reason set). An explainer
    failure after retries stops the run with the failure recorded; nothing is made up.
    """
    usage = dict(state.get("usage") or empty_usage())
    spent = budget_exhausted(state, rt.budgets)
    if spent:
        return None, usage, spent
    messages = [
        {"role": "system", "content": prompts.template("system")},
        {"role": "user", "content": prompts.template(template).format(**fields)},
    ]
    req = LLMRequest(task=task, messages=messages, schema_name=schema, context=context, max_tokens=max_tokens)
    try:
        resp = rt.backend.complete(req)
    except ExplainerError as exc:
        used = getattr(exc, "usage", None)
        if used is not None:
            usage = _add_usage(usage, used, getattr(exc, "attempts", 1))
        return None, usage, f"explainer_error: {exc}"
    usage = _add_usage(usage, resp.usage, resp.attempts)
    return resp.data, usage, budget_exhausted({**state, "usage": usage}, rt.budgets)


def _add_usage(usage: Usage, u, calls: int) -> Usage:
    return {
        "input_tokens": usage["input_tokens"] + u.input_tokens,
        "output_tokens": usage["output_tokens"] + u.output_tokens,
        "usd": round(usage["usd"] + u.usd, 6),
        "llm_calls": usage["llm_calls"] + calls,
    }


def _obs(ctx, max_act: float) -> SeedContext:
    return {
        "tokens": ctx.tokens,
        "acts": ev.normalise(ctx.acts, max_act),
        "text": ctx.text,
        "context_id": ctx.context_id,
    }


def _observations(state: AgentState) -> list[dict]:
    """Every context the hypotheses are scored on: the seed's and the probes run so far."""
    seed = state["seed"]
    return seed["top"] + seed["quantiles"] + seed["negatives"] + state.get("evidence", [])


def _heldout(pred: dict | None, state: AgentState, threshold: float) -> tuple[float | None, float | None]:
    """(Pearson r, F1) of `pred` on the seed contexts held out of the loop (None, None without a
    predicate or without held-out contexts)."""
    held = state["seed"].get("heldout", [])
    if pred is None or not held:
        return None, None
    return ev.predicate_r(pred, held), ev.predicate_scores(pred, held, threshold)["f1"]


def _score(
    hyps: list[Hypothesis], observations: list[dict], threshold: float, state: AgentState
) -> list[Hypothesis]:
    """Each hypothesis with its predicate's scores on the loop's observations and on the held-out
    seed contexts."""
    out = []
    for h in hyps:
        s = ev.predicate_scores(h.get("predicate"), observations, threshold)
        r, f1 = _heldout(h.get("predicate"), state, threshold)
        out.append(
            {
                **h,
                "precision": s["precision"],
                "recall": s["recall"],
                "f1": s["f1"],
                "heldout_r": r,
                "heldout_f1": f1,
            }
        )
    return out


def split_heldout(contexts: list, every: int) -> tuple[list, list]:
    """(kept, held out): every `every`-th context (the `every`-th, the 2·`every`-th, ...) is held out,
    so the strongest context stays in the loop."""
    kept = [c for i, c in enumerate(contexts) if i % every != every - 1]
    held = [c for i, c in enumerate(contexts) if i % every == every - 1]
    return kept, held


# -- nodes ------------------------------------------------------------------------------------------
@node()
def seed(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """Read the feature's statistics and example contexts from the activation store."""
    f, s = state["feature"], rt.settings
    stats = rt.store.feature_stats(f)
    if stats.max_activation <= 0:
        empty = {
            "max_activation": 0.0,
            "frequency": 0.0,
            "mean_activation": 0.0,
            "top": [],
            "quantiles": [],
            "negatives": [],
            "heldout": [],
            "mi_words": [],
            "trigger_tokens": [],
            "active_tokens": [],
            "preceding": [],
            "structure": {},
        }
        return (
            {
                "stop_reason": "dead feature: never active on the corpus",
                "round": 0,
                "usage": empty_usage(),
                "seed": empty,
                "hypotheses": [],
                "evidence": [],
                "probes_run": 0,
            },
            f"feature {f} never fires on the corpus",
        )
    with rt.model_lock:
        drawn = draw_seed(rt.store, f, s)
    top, quant, neg, gate_q, gate_neg = (
        [_obs(c, stats.max_activation) for c in group]
        for group in (drawn.top, drawn.quantiles, drawn.negatives, drawn.gate_quantiles, drawn.gate_negatives)
    )
    (quant, quant_h), (neg, neg_h) = (split_heldout(c, s.heldout_every) for c in (quant, neg))
    quant_h, neg_h = quant_h + gate_q, neg_h + gate_neg
    top_h: list = []
    if sum(max(c["acts"], default=0.0) >= s.active_threshold for c in quant_h) < s.heldout_min_activating:
        top, top_h = split_heldout(top, s.heldout_every)
    observed = top + quant
    seed_data = {
        "max_activation": stats.max_activation,
        "frequency": stats.frequency,
        "mean_activation": stats.mean_activation,
        "top": top,
        "quantiles": quant,
        "negatives": neg,
        "heldout": top_h + quant_h + neg_h,
        "mi_words": _mi_words(rt, f),
        "trigger_tokens": ev.trigger_tokens(observed, s.active_threshold),
        # a longer tail, for naming what the active words share: the strongest word alone often
        # carries 80% of the mass ("one" among the number words)
        "active_tokens": ev.trigger_tokens(observed, s.active_threshold, coverage=0.98, limit=30),
        "preceding": ev.preceding_tokens(observed, s.active_threshold),
        "structure": ev.structure_shares(observed, s.active_threshold),
        "output_candidates": _output_candidates(rt, f),
    }
    msg = (
        f"seed: max act {stats.max_activation:.3f}, "
        f"{len(top)} top / {len(quant)} quantile / {len(neg)} negative contexts "
        f"(+{len(top_h) + len(quant_h) + len(neg_h)} held out of the loop)"
    )
    return {
        "seed": seed_data,
        "round": 0,
        "usage": state.get("usage") or empty_usage(),
        "probes_run": 0,
        "evidence": [],
        "hypotheses": [],
        "stop_reason": None,
    }, msg


def _mi_words(rt: Runtime, feature: int) -> list[list]:
    """MI-vocabulary words (arXiv 2502.15576) for the feature; [] when the vocabulary cannot be built here."""
    try:
        from sage.vocab.lookup import mi_words
    except ImportError:
        return []
    return [[w, round(float(sc), 5)] for w, sc in mi_words(rt.subject, feature, top=rt.settings.mi_words)]


def _output_candidates(rt: Runtime, feature: int) -> dict[str, list[str]]:
    """Top MI words and top / bottom logit-lens tokens: the output hypotheses' lists ({} without local
    SAE weights, e.g. a Neuronpedia subject: nothing to intervene on)."""
    if getattr(rt.subject, "sae", None) is None:
        return {}
    from sage.vocab.lookup import logit_lens_bottom, logit_lens_tokens, mi_words

    n = rt.settings.output_tokens
    return {
        "mi": [w for w, _ in mi_words(rt.subject, feature, top=n)],
        "logitlens": [t for t, _ in logit_lens_tokens(rt.subject, feature, top=n)],
        "logitlens_bottom": [t for t, _ in logit_lens_bottom(rt.subject, feature, top=n)],
    }


@node()
def hypothesize(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """Ask the explainer for competing hypotheses (with a control) from the seed summary."""
    info = rt.subject.info()
    fields, context = summaries.for_hypothesize(
        state, {"feature": state["feature"], "hook_name": info["hook_name"], "model": info["model"]}
    )
    data, usage, stop = ask(rt, state, "hypothesize", "hypothesize", fields, context, "hypotheses")
    hyps = [
        new_hypothesis(
            f"H{i}",
            h["text"],
            h["kind"],
            h["role"],
            h.get("predicate"),
            refinements=0,
            concept=h.get("concept"),
        )
        for i, h in enumerate((data or {}).get("hypotheses", []), 1)
    ]
    hyps = _score(hyps, _observations(state), rt.settings.active_threshold, state)
    lines = [f"  {h['id']} ({h['kind']}/{h['role']}): {h['text']}" for h in hyps]
    msg = "hypotheses:\n" + "\n".join(lines) if hyps else f"no hypotheses ({stop})"
    # the output side comes from the seed's lists, not from the explainer: it needs no LLM call
    outputs = output_hypotheses(state["seed"].get("output_candidates") or {})
    if outputs:
        msg += "\noutput hypotheses:\n" + "\n".join(f"  {h['id']}: {h['text']}" for h in outputs)
    update = {"hypotheses": hyps, "output_hypotheses": outputs, "output_results": None}
    return {**update, "usage": usage, "stop_reason": stop}, msg


@node()
def design(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """Start a round: the explainer's probes for the open hypotheses, plus matching corpus contexts."""
    rnd = state.get("round", 0) + 1
    open_hyps = [h for h in state["hypotheses"] if h["status"] not in DECIDED]
    room = min(rt.budgets.probes_per_round, rt.budgets.max_probes - state.get("probes_run", 0))
    examples = {
        "top": [{"tokens": o["tokens"], "acts": o["acts"]} for o in state["seed"]["top"][:6]],
        "negatives": [{"tokens": o["tokens"]} for o in state["seed"]["negatives"][:4]],
    }
    fields, context = summaries.for_design(state, open_hyps, room, examples)
    data, usage, stop = ask(rt, {**state}, "design", "design", fields, context, "probes")
    known = {h["id"] for h in open_hyps}
    tested = {e["text"] for e in state.get("evidence", [])}
    pending, seen = [], set()
    for p in (data or {}).get("probes", []):
        if p["hypothesis_id"] in known and p["text"] not in tested and p["text"] not in seen:
            seen.add(p["text"])
            pending.append({**p, "source": "explainer"})
    concept = _concept_probes(rt, state, open_hyps, tested | seen, rnd)
    # occurrence tests get a fixed share of the round; the concept tests come next: they are what can
    # refute a named category
    occurrences = _occurrence_probes(
        rt, state, open_hyps, tested | seen, min(rt.settings.occurrence_probes, max(room, 0))
    )
    pending = (occurrences + concept + pending)[: max(room, 0)]
    for i, p in enumerate(pending):
        p["probe_id"] = f"R{rnd}P{i + 1}"
        p["round"] = rnd
    # a spent budget still lets the free corpus probes run (analyze stops before its call); an
    # explainer failure stops the run here, as in every other node
    go_on = bool(pending) and not (stop or "").startswith("explainer_error")
    return (
        {"pending": pending, "round": rnd, "usage": usage, "stop_reason": None if go_on else stop},
        f"round {rnd}: designed {len(pending)} probes",
    )


def _concept_probes(
    rt: Runtime, state: AgentState, hyps: list[Hypothesis], exclude_texts: set, rnd: int
) -> list[Probe]:
    """Minimal pairs (unseen member vs near miss) for every open hypothesis that names a concept."""
    out = []
    for h in hyps:
        if h.get("concept"):
            for p in concept_probes(
                h["id"], h["concept"], state["seed"]["top"], rnd, rt.settings.concept_pairs
            ):
                if p["text"] not in exclude_texts:
                    out.append({**p, "source": "concept"})
    return out


def _token_ids(tok, word: str) -> list[int]:
    """The ids of the single tokens that read as `word` (normalised): as written, word-initial,
    capitalised, both. A form the tokenizer splits is no occurrence of the token."""
    out = set()
    for form in (word, " " + word, word.capitalize(), " " + word.capitalize()):
        ids = tok(form, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and norm_token(tok.decode(ids)) == word:
            out.add(ids[0])
    return sorted(out)


def _occurrence_probes(
    rt: Runtime, state: AgentState, hyps: list[Hypothesis], exclude_texts: set, room: int
) -> list[Probe]:
    """Occurrence tests: for the tokens of the open token-set hypotheses (and of conjunctions), corpus
    contexts that contain the token and that no explainer saw, sampled for the token rather than for
    the feature. The seed contexts were picked because the feature fired in them, so a token's
    activity there overstates how reliably it fires; these samples measure it
    (`scoring.occurrence_stats`). Tokens with the fewest tested occurrences go first,
    `occurrences_per_token` contexts each, `room` at most."""
    s = rt.settings
    seed_ctx = state["seed"]
    seen_ids = [o["context_id"] for o in seed_ctx["top"] + seed_ctx["quantiles"] + seed_ctx["negatives"]]
    seen_ids += [o["context_id"] for o in seed_ctx.get("heldout", [])]
    tested = ev.occurrence_stats(state.get("evidence", []), s.active_threshold)
    owner: dict[str, str] = {}
    for h in hyps:
        pred = h.get("predicate") or {}
        # a conjunction's words are tested too: whether they fire without its condition is its test
        sets = (
            [pred]
            if pred.get("type") == "token_set"
            else [p for p in pred.get("all", []) if p.get("type") == "token_set"]
        )
        for part in sets:
            for t in part["tokens"][: s.occurrence_tokens]:
                owner.setdefault(norm_token(t), h["id"])
    order = sorted((t for t in owner if t), key=lambda t: tested.get(t, {}).get("n", 0))
    tok = rt.subject.tokenizer
    used = set(exclude_texts)
    out: list[Probe] = []
    for t in order:
        if len(out) >= room:
            break
        ids = _token_ids(tok, t)
        if not ids:
            continue
        found = rt.store.search(
            ids, limit=4 * s.occurrences_per_token, exclude=seen_ids, seed=state.get("round", 0)
        )
        taken = 0
        for text in rt.store.iter_texts(found):
            if taken == s.occurrences_per_token or len(out) >= room:
                break  # iter_texts decodes lazily: stop before decoding contexts that cannot be used
            if text in used:
                continue
            used.add(text)
            taken += 1
            out.append(
                {
                    "hypothesis_id": owner[t],
                    "text": text,
                    "purpose": "occurrence",
                    "expect": "high",
                    "source": "corpus",
                    "token": t,
                }
            )
    return out


@node()
def probe(rt: Runtime, state: AgentState) -> tuple[AgentState, str | None]:
    """Run every pending probe through the model + SAE in one batched call."""
    pending = state.get("pending", [])
    outputs = _output_experiments(rt, state, len(pending))
    msg_out = outputs.pop("_msg", None)
    if not pending:
        return {"pending": [], **outputs}, msg_out
    f = state["feature"]
    max_act = state["seed"]["max_activation"]
    with rt.model_lock:
        results = rt.engine().run([p["text"] for p in pending], [f])
    new: list[Observation] = []
    for p, ta in zip(pending, results):
        acts = ev.normalise(ta.column(f).tolist(), max_act)
        raw = ta.column(f).tolist()
        pos = peak_position(acts)
        peak = acts[pos] if acts else 0.0
        new.append(
            {
                **p,
                "tokens": ta.tokens,
                "acts": [round(a, 4) for a in acts],
                # the raw per-token activations and sink positions, kept for the report's heat-maps
                "raw_acts": [round(a, 5) for a in raw],
                "sink_positions": list(ta.sinks),
                "max_activation": round(raw[pos], 5) if raw else 0.0,
                "normalized": round(peak, 4),
                "max_token": ta.tokens[pos] if raw and raw[pos] > 0 else None,
                "agrees": ev.probe_verdict(p["expect"], peak, rt.settings.active_threshold),
            }
        )
    agree = sum(e["agrees"] for e in new)
    msg = f"probed {len(new)} texts: {agree} matched expectations"
    return (
        {
            **outputs,
            "pending": [],
            "evidence": [*state.get("evidence", []), *new],
            "probes_run": outputs.get("probes_run", state.get("probes_run", 0)) + len(new),
        },
        msg if msg_out is None else f"{msg}; {msg_out}",
    )


def _output_experiments(rt: Runtime, state: AgentState, pending: int) -> dict:
    """The output hypotheses' intervention experiments (sage.intervention.output), run once, in the
    first round whose probe budget has room for them; every prompt text they run counts as a probe.
    Returns a partial update (with "_msg", the progress line) or {} when there is nothing to run."""
    hyps = state.get("output_hypotheses") or []
    if not hyps or state.get("output_results") is not None:
        return {}
    s = rt.settings
    own = own_prompts(state["seed"]["top"], s.output_contexts, skip_positions())
    cost = 2 * len(EFFECTS.prompts) + 2 * len(own) + 2 * min(s.output_continuations, len(EFFECTS.prompts))
    used = state.get("probes_run", 0)
    if used + pending + cost > rt.budgets.max_probes:
        return {"_msg": f"output experiments skipped: {cost} texts do not fit the probe budget"}
    with rt.model_lock:
        res = run_experiments(
            rt.subject,
            state["feature"],
            state["seed"]["max_activation"],
            hyps,
            own,
            n_continuations=s.output_continuations,
        )
    return {
        "output_results": res,
        "probes_run": used + res["forwards"],
        "_msg": f"output experiments: amplified on {len(EFFECTS.prompts)} neutral prompts, ablated on "
        f"{len(own)} own contexts ({res['forwards']} texts)",
    }


@node()
def analyze(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """Re-score every hypothesis on all evidence and let the explainer confirm, refute or refine it."""
    s = rt.settings
    rnd = state["round"]
    observations = _observations(state)
    hyps = _score(state["hypotheses"], observations, s.active_threshold, state)
    new = [e for e in state["evidence"] if e["round"] == rnd]
    extra = {
        "token_stats": _top_token_stats(observations, s.active_threshold),
        "preceding": ev.preceding_tokens(observations, s.active_threshold),
        "occurrences": ev.occurrence_stats(state["evidence"], s.active_threshold),
        "conjunction_tests": {
            h["id"]: split
            for h in hyps
            if (split := ev.conjunction_split(h.get("predicate"), state["evidence"], s.active_threshold))
        },
        "occurrence_rule": {"min": s.min_occurrences},
        "max_refinements": s.max_refinements,
        "concept_tests": {
            h["id"]: concept_test_summary(h["id"], state["evidence"], h["concept"])
            for h in hyps
            if h.get("concept")
        },
    }
    fields, context = summaries.for_analyze({**state, "hypotheses": hyps}, new, s.active_threshold, extra)
    data, usage, stop = ask(rt, state, "analyze", "analyze", fields, context, "analysis")
    by_id = {h["id"]: dict(h) for h in hyps}

    # with the key off (a tie of 1.0 can never decide) detection is neither computed nor shown
    key_on = s.heldout_detection_tie < 1.0

    def generalisation(pred: dict | None) -> tuple:
        r, f1 = _heldout(pred, state, s.active_threshold)
        detect = ev.context_detection(pred, state["seed"].get("heldout", [])) if key_on else None
        evidence = state.get("evidence", [])
        probed = ev.predicate_scores(pred, evidence, s.active_threshold)["f1"]
        probed_r = ev.predicate_r(pred, evidence)
        return (
            -1.0 if r is None else r,
            None if not key_on else -1.0 if detect is None else detect,
            -1.0 if f1 is None else f1,
            probed or 0.0,
            probed_r or 0.0,
        )

    for u in (data or {}).get("updates", []):
        h = by_id.get(u["hypothesis_id"])
        if h is None or h["status"] in DECIDED:
            continue
        by_id[h["id"]] = apply_update(h, u, rnd, state["evidence"], s, generalisation)
    hyps = _score(list(by_id.values()), observations, s.active_threshold, state)
    outputs = judged_outputs(state)
    summary = ", ".join(f"{h['id']}={h['status']}" for h in [*hyps, *outputs])
    update = {"hypotheses": hyps, "usage": usage, "stop_reason": stop}
    if outputs:
        update["output_hypotheses"] = outputs
    return update, f"round {rnd} analysis: {summary}"


def judged_outputs(state: AgentState) -> list[dict]:
    """The output hypotheses judged, in code, from their experiments' effect sizes (unchanged until the
    experiments have run)."""
    res = state.get("output_results")
    hyps = state.get("output_hypotheses") or []
    if not res:
        return hyps
    return [judge(h, res["amplify"].get(h["id"]), res["ablate"].get(h["id"])) for h in hyps]


def consistent_tests(hypothesis_id: str, evidence: list[dict]) -> int:
    """How many probes designed for the hypothesis came out as it predicted."""
    return sum(1 for e in evidence if e.get("hypothesis_id") == hypothesis_id and e.get("agrees"))


def apply_update(
    h: Hypothesis,
    u: dict,
    rnd: int,
    evidence: list[dict],
    s,
    generalisation: Callable[[dict | None], tuple] | None = None,
) -> Hypothesis:
    """The hypothesis after the explainer's update `u` in round `rnd`, under the loop's rules:

    - "confirmed" needs at least `s.min_confirm_tests` probes of this hypothesis that came out as
      predicted (SAGE's rule, jiujiubuhejiu/SAGE tools/prompt_generator.py: "CONFIRMED ... >=2 tests
      consistently support"); with fewer it stays open, and the history says why.
    - a hypothesis that names a concept is confirmed only when its unseen members fired and its near
      misses stayed silent (`concept_test_summary`); otherwise it stays open.
    - "refined" rewrites the text (and predicate) at most `s.max_refinements` times; an update past
      the cap leaves the hypothesis open with its current text, and the history says so.
    - a refined predicate is kept only when it generalises better: `generalisation(predicate)` is
      (Pearson r with the activations on the held-out seed contexts, balanced accuracy of detecting
      the firing ones there, F1 there, F1 on the probes, r on the probes), compared as
      `generalises_better` says: held-out detection may not fall beyond `heldout_detection_tie`,
      held-out r decides beyond `heldout_r_tie`, then the rest in order, so the held-out data decide
      and the experiments break their ties (dropping a category member whose probe stayed silent
      rarely changes the held-out scores; moving a token to the weak tier changes no mask, so only
      the graded r can see it).
      Otherwise the hypothesis keeps its best predicate so far and stays open.
    """
    h = dict(h)
    status, note = u["status"], u["note"]
    # the scores the decision was taken on (all evidence up to this round), for the report's history
    entry = {
        "round": rnd,
        "status": status,
        "note": note,
        "precision": h.get("precision"),
        "recall": h.get("recall"),
    }
    if status == "confirmed":
        n = consistent_tests(h["id"], evidence)
        tests = concept_test_summary(h["id"], evidence, h["concept"]) if h.get("concept") else None
        if n < s.min_confirm_tests:
            status = "open"
            entry.update(
                status="open",
                note=f"{note} [not confirmed: {n} consistent test(s), {s.min_confirm_tests} needed]",
            )
        elif tests is not None and not tests["supported"]:
            status = "open"
            entry.update(
                status="open",
                note=f"{note} [concept not confirmed: {tests['members_fired']}/{tests['members_tested']} "
                f"unseen members fired, {tests['near_misses_silent']}/{tests['near_misses_tested']} "
                "near misses stayed silent]",
            )
    elif status == "refined":
        # a new predicate must generalise better; a reworded text over the same predicate is kept
        checked = (
            generalisation is not None
            and h.get("predicate") is not None
            and u.get("new_predicate", h["predicate"]) != h["predicate"]
        )
        capped = h.get("refinements", 0) >= s.max_refinements
        before, after = (
            (generalisation(h["predicate"]), generalisation(u["new_predicate"]))
            if checked and not capped
            else (None, None)
        )
        if capped:
            status = "open"
            entry.update(
                status="open", note=f"{note} [refinement cap {s.max_refinements} reached: kept open]"
            )
        elif checked and not generalises_better(after, before, s.heldout_r_tie, s.heldout_detection_tie):
            status = "open"
            entry.update(
                status="open",
                note=f"{note} [{REFINEMENT_REJECTED}: (held-out r, held-out detection, held-out F1, "
                f"probe F1, probe r) "
                f"{_pair(before)} -> {_pair(after)}; kept the better predicate]",
            )
        else:
            h["text"] = u.get("new_text") or h["text"]
            if "new_predicate" in u:
                h["predicate"] = u["new_predicate"]
            if u.get("new_concept") and h.get("concept"):
                h["concept"] = u["new_concept"]
            h["refinements"] = h.get("refinements", 0) + 1
            entry["text"] = h["text"]
    h["status"] = status
    h["history"] = [*h["history"], entry]
    return h


def generalises_better(after: tuple, before: tuple, r_tie: float, detection_tie: float) -> bool:
    """Whether `generalisation` scores `after` beat `before`. Both keys of the held-out data must
    hold: held-out detection (balanced accuracy over contexts, the second key) may not fall by more
    than `detection_tie`, and held-out r (the first) decides when it moved by more than `r_tie`;
    otherwise the keys after r decide, in order, with detection within `detection_tie` counting as
    equal. Detection None (the key off) never decides."""
    (r_a, d_a, *rest_a), (r_b, d_b, *rest_b) = after, before
    keyed = d_a is not None and d_b is not None
    if keyed and d_a < d_b - detection_tie:
        return False
    if abs(r_a - r_b) > r_tie:
        return r_a > r_b
    if keyed and abs(d_a - d_b) > detection_tie:
        return d_a > d_b
    return tuple(rest_a) > tuple(rest_b)


def _pair(scores: tuple) -> str:
    return "(" + ", ".join("-" if v is None else f"{v:.2f}" for v in scores) + ")"


def _top_token_stats(observations: list[dict], threshold: float, limit: int = 40) -> dict:
    stats = ev.token_stats(observations, threshold)
    ranked = sorted(stats.items(), key=lambda kv: -kv[1]["mass"])[:limit]
    return dict(ranked)


@node(timed=False)
def review(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """Decide, in code, whether to stop (budget, convergence, round limit) or run another round."""
    reason = review_decision(state, rt.budgets)
    msg = (
        f"review: stop ({reason})"
        if reason
        else f"review: another round (round {state.get('round', 0)} done)"
    )
    return {"stop_reason": reason}, msg


@node()
def conclude(rt: Runtime, state: AgentState) -> tuple[AgentState, str]:
    """The final conclusion. When a budget stopped the run, the rule-based renderer writes it from
    the evidence gathered so far, and says so. When the explainer failed, the conclusion is that
    failure and its reason (what the evidence so far shows follows, marked as partial)."""
    outputs = (
        _output_experiments(rt, state, 0) if not str(state.get("stop_reason")).startswith("dead") else {}
    )
    msg_out = outputs.pop("_msg", None)
    state = {**state, **outputs}
    # the occurrence tests, read once by both conclusion rules below (neither changes the evidence)
    occurrences = ev.occurrence_stats(state.get("evidence", []), rt.settings.active_threshold)
    retiered = rt.settings.strong_tier_at_conclusion and bool(state.get("hypotheses"))
    if retiered:
        state["hypotheses"] = _held_to_strong_level(state, rt.settings, occurrences)
    judged = judged_outputs(state)
    state["output_hypotheses"] = judged
    fields, context = summaries.for_conclude(state)
    stop = state.get("stop_reason") or "concluded"
    data, usage = None, state.get("usage") or empty_usage()
    concluded_by = rt.backend.name
    if state.get("hypotheses") and not stop.startswith(("budget", "explainer_error")):
        data, usage, stop_now = ask(rt, state, "conclude", "conclude", fields, context, "conclusion")
        stop = stop_now if (stop_now or "").startswith("explainer_error") else stop
    if stop.startswith("explainer_error"):
        partial = conclude_from_evidence(context) if state.get("hypotheses") else None
        data = failed_conclusion(stop.removeprefix("explainer_error: "), partial)
        concluded_by = "none: the explainer failed"
    elif data is None:
        data = conclude_from_evidence(context, dead=stop.startswith("dead feature"))
        concluded_by = "offline (rule-based, from the evidence so far)"
    named = []
    if not stop.startswith("explainer_error"):
        state["hypotheses"], named = _named_where_it_fires(state, data, rt.settings, occurrences)
        if named:
            sentence = _fires_sentence(named, rt.settings.fire_share_at_conclusion)
            data = {**data, "description": _with_sentence(data["description"], sentence)}
    update = {"conclusion": {**data, "concluded_by": concluded_by}, "usage": usage, "stop_reason": stop}
    if retiered or named:
        update["hypotheses"] = state["hypotheses"]
    if judged:
        update["output_hypotheses"] = judged
    update.update(outputs)
    msg = f"conclusion: {' | '.join(data['labels'])}"
    return update, msg if msg_out is None else f"{msg_out}\n{msg}"


def _named_where_it_fires(
    state: AgentState, conclusion: dict, s: AgentConfig, occurrences: dict
) -> tuple[list[Hypothesis], list[str]]:
    """(hypotheses, tokens named): the conclusion's best hypothesis, when a token set, with the tested
    tokens it does not hold that the feature fires on at at least `fire_share_at_conclusion` of their
    occurrence tests added to its weak tier (`sage.hypotheses.tiers.name_firing`), its history saying
    so. The tokens of the conclusion's other labelled hypothesis stay out of it, so that two meanings
    stay two. Its scores are the loop's, taken before the addition; the verdicts stand.
    occurrences: `scoring.occurrence_stats` of the state's evidence."""
    hyps = state.get("hypotheses") or []
    ids = conclusion.get("best_hypothesis_ids") or []
    if not ids or not s.fire_share_at_conclusion:
        return hyps, []
    others = set().union(*(trigger_words(h.get("predicate") or {}) for h in hyps if h["id"] in ids[1:]))
    out, named = [], []
    for h in hyps:
        if h["id"] == ids[0]:
            pred, named = name_firing(
                h.get("predicate") or {}, occurrences, s.fire_share_at_conclusion, s.min_occurrences, others
            )
            if named:
                said = _fires_sentence(named, s.fire_share_at_conclusion)
                h = _changed_at_conclusion(h, pred, f"weak tier for the conclusion: {said}", state)
        out.append(h)
    return out, named


def _fires_sentence(tokens: list[str], share: float) -> str:
    return (
        f"It also fires, more weakly and not wherever they occur, on {quote_tokens(tokens)} (above 0 "
        f"at {share:.0%} or more of their tested occurrences)."
    )


def _with_sentence(description: str, sentence: str, limit: int = 1200) -> str:
    """`sentence` after the description's first sentence, so that the length limit cuts elsewhere."""
    cut = description.find(". ") + 1 or len(description)
    return f"{description[:cut]} {sentence} {description[cut:].lstrip()}".strip()[:limit]


def _changed_at_conclusion(h: Hypothesis, pred: dict, note: str, state: AgentState) -> Hypothesis:
    """`h` with the predicate a conclusion rule gave it and a history entry saying why. The entry has
    the record's history shape: the status and scores it was written on, which the rule leaves as
    the loop measured them."""
    entry = {
        "round": state.get("round", 0),
        "status": h["status"],
        "note": note,
        "precision": h.get("precision"),
        "recall": h.get("recall"),
    }
    return {**h, "predicate": pred, "history": [*h.get("history", []), entry]}


def _held_to_strong_level(state: AgentState, s: AgentConfig, occurrences: dict) -> list[Hypothesis]:
    """The hypotheses with each token set's strong tier held to SAGE's strong level
    (`sage.hypotheses.tiers`): a strong token whose occurrence tests average below half the top-10
    contexts' mean max moves to the weak tier, and its history says so. The mask does not change, so
    no verdict does; what changes is what the conclusion calls the peaks, which a reader asked for
    text that makes the feature fire takes at their word (the mask, so the token-level scores the
    history entry keeps, did not change). occurrences: `scoring.occurrence_stats` of the evidence."""
    skip = skip_positions()
    level = strong_level([max(o["acts"][skip:], default=0.0) for o in state["seed"]["top"]])
    out = []
    for h in state["hypotheses"]:
        pred, moved = demote_below(h.get("predicate") or {}, occurrences, level, s.min_occurrences)
        if moved:
            note = (
                f"strong tier for the conclusion: moved to the weak tier {quote_tokens(moved)}, whose "
                f"mean activation where they occur is below {level:.2f} of max (half the top-10 "
                "contexts' mean max)"
            )
            h = _changed_at_conclusion(h, pred, note, state)
        out.append(h)
    return out
