"""What each node sends the explainer: a compact summary of the state, never the transcript.

Each function returns (prompt fields for the template, structured context for
rule-based backends). Their size depends on the hypotheses and the current round's
probes only, so tokens per feature grow linearly with the number of rounds.
"""

from __future__ import annotations

from agents.state import AgentState, Hypothesis, Observation, SeedContext
from sage.hypotheses.experiments import concept_test_summary
from sage.intervention.output import output_hypothesis_line
from sage.model.positions import peak_position, skip_positions

MAX_TEXT = 160


def mark(obs: SeedContext | Observation) -> str:
    """Context text with the strongest token marked [[tok]] and its normalised activation after it."""
    skip = skip_positions()
    acts, toks = obs["acts"], obs["tokens"]
    if len(toks) <= skip:
        return ""
    pos = peak_position(acts, skip)
    left = "".join(toks[max(skip, pos - 24) : pos])
    right = "".join(toks[pos + 1 : pos + 8])
    return f"...{left}[[{toks[pos]}]]({acts[pos]:.2f}){right}...".replace("\n", "\\n")


def hypothesis_line(h: Hypothesis) -> str:
    score = "" if h.get("f1") is None else f" precision={h['precision']:.2f} recall={h['recall']:.2f}"
    if h.get("heldout_r") is not None:
        score += f" held-out r={h['heldout_r']:.2f}"
    if h.get("heldout_f1") is not None:
        score += f" held-out F1={h['heldout_f1']:.2f}"
    tags = f"{h['kind']}, {h['role']}, {h['status']}{score}"
    concept = h.get("concept")
    named = (
        f" concept={concept['name']!r} (unseen members {concept['members'][:6]}, "
        f"near misses {concept['non_members'][:6]})"
        if concept
        else ""
    )
    return f"- {h['id']} [{tags}] {h['text']} predicate={h.get('predicate')}{named}"


def evidence_line(e: Observation) -> str:
    text = e["text"][:MAX_TEXT].replace("\n", "\\n")
    where = f" on {e['max_token']!r}" if e.get("max_token") is not None else " (silent)"
    return f'- [{e["probe_id"]}] "{text}" -> {e["normalized"]:.2f}{where} (expected {e["expect"]})'


def for_hypothesize(state: AgentState, feature_desc: dict) -> tuple[dict, dict]:
    seed = state["seed"]
    fields = {
        **feature_desc,
        "frequency": f"{seed['frequency']:.4%}",
        "top_contexts": "\n".join(f"- {mark(o)}" for o in seed["top"][:12]),
        "quantile_contexts": "\n".join(f"- {mark(o)}" for o in seed["quantiles"][:8]) or "(none)",
        "mi_words": ", ".join(w for w, _ in seed["mi_words"][:20]) or "(unavailable)",
        "trigger_tokens": ", ".join(f"{t!r} ({m:.0%})" for t, m in seed["trigger_tokens"]),
    }
    context = {k: seed[k] for k in ("trigger_tokens", "preceding", "structure", "mi_words", "frequency")}
    context["active_tokens"] = seed.get("active_tokens") or seed["trigger_tokens"]
    return fields, context


def for_design(
    state: AgentState, open_hyps: list[Hypothesis], max_probes: int, examples: dict
) -> tuple[dict, dict]:
    recent = [e for e in state.get("evidence", []) if e["round"] == state.get("round", 0)]
    fields = {
        "feature": state["feature"],
        "hypotheses": "\n".join(map(hypothesis_line, open_hyps)),
        "evidence": "\n".join(map(evidence_line, recent[-20:])) or "(none yet)",
        "max_probes": max_probes,
    }
    context = {
        "hypotheses": open_hyps,
        "round": state.get("round", 0),
        "max_probes": max_probes,
        "tested": sorted({e["text"] for e in state.get("evidence", [])}),
        **examples,
    }
    return fields, context


def for_analyze(
    state: AgentState, new: list[Observation], threshold: float, extra: dict
) -> tuple[dict, dict]:
    hyps = state["hypotheses"]
    scores = [f"- {h['id']}: precision={h.get('precision')} recall={h.get('recall')}" for h in hyps]
    occ = extra.get("occurrences") or {}
    if occ:  # the explainer judges tokens by how they fire where they occur, not only where it fired
        scores.append("Occurrence tests (unseen corpus contexts sampled because they contain the token):")
        scores += [
            f"- {t!r}: active at {o['active']}/{o['n']} occurrences, mean activation {o['mean']:.2f}"
            for t, o in occ.items()
        ]
    for hid, split in (extra.get("conjunction_tests") or {}).items():
        (n_with, a_with, s_with), (n_without, a_without, s_without) = split["with"], split["without"]
        scores.append(
            f"- {hid}, occurrences of its words: active at {a_with}/{n_with} with its condition "
            f"(mean {s_with / max(n_with, 1):.2f}), {a_without}/{n_without} without it "
            f"(mean {s_without / max(n_without, 1):.2f})"
        )
    fields = {
        "feature": state["feature"],
        "hypotheses": "\n".join(map(hypothesis_line, hyps)),
        "output_hypotheses": output_lines(state),
        "results": "\n".join(map(evidence_line, new)) or "(none)",
        "active_threshold": threshold,
        "predicate_scores": "\n".join(scores),
    }
    result_keys = ("probe_id", "hypothesis_id", "purpose", "expect", "normalized", "agrees")
    context = {
        "hypotheses": hyps,
        "results": [{k: e.get(k) for k in result_keys} for e in new],
        "round": state.get("round", 0),
        "output_hypotheses": state.get("output_hypotheses") or [],
        **extra,
    }
    return fields, context


def for_conclude(state: AgentState) -> tuple[dict, dict]:
    ev = sorted(state.get("evidence", []), key=lambda e: -e["normalized"])
    key = ev[:8] + [e for e in ev if e["expect"] == "low"][:4]
    fields = {
        "feature": state["feature"],
        "hypotheses": "\n".join(map(hypothesis_line, state["hypotheses"])),
        "output_hypotheses": output_lines(state),
        "evidence": "\n".join(map(evidence_line, key)) or "(none)",
    }
    context = {
        "hypotheses": state["hypotheses"],
        "concept_tests": {
            h["id"]: concept_test_summary(h["id"], state.get("evidence", []), h["concept"])
            for h in state["hypotheses"]
            if h.get("concept")
        },
        "top": state["seed"]["top"][:3],
        "strongest_probe": ev[0] if ev else None,
        "n_probes": len(ev),
        "max_activation": state["seed"]["max_activation"],
        "output_hypotheses": state.get("output_hypotheses") or [],
    }
    return fields, context


def output_lines(state: AgentState) -> str:
    """The output hypotheses with their measured effects, one line each (judged in code, not by the
    explainer)."""
    return "\n".join(map(output_hypothesis_line, state.get("output_hypotheses") or [])) or "(none measured)"
