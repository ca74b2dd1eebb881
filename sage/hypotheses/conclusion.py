"""Rule-based rendering of a conclusion from hypotheses and evidence (no model, no LLM).

The agent's `conclude` node falls back on it when a budget or an explainer failure
stopped the run; the offline explainer and the one-shot baseline conclude with it.
"""

from __future__ import annotations

from sage.hypotheses.predicates import describe, token_set_words, trigger_words
from sage.hypotheses.records import Conclusion, Hypothesis
from sage.model.positions import peak_position, skip_positions

#: the conclusion of a feature that the activation store says never fired
DEAD = {
    "labels": ["dead feature"],
    "description": "The feature never fired on the corpus, so there is no evidence to explain it.",
    "best_hypothesis_ids": [],
}
#: the conclusion of a live feature for which no hypothesis was formed (e.g. a budget spent first)
UNEXPLAINED = {
    "labels": ["unexplained feature"],
    "description": "No hypothesis was formed, so there is nothing to conclude about this feature.",
    "best_hypothesis_ids": [],
}
#: the label of an explanation whose explainer failed
FAILED_LABEL = "explanation failed"


def failed_conclusion(reason: str, partial: Conclusion | None = None) -> Conclusion:
    """The conclusion of a run the explainer failed: it says so and why, first; what the rules
    drew from the evidence gathered before the failure (`partial`) follows, marked as such.
    No hypothesis is named best: a failed explanation proposes none."""
    description = f"explanation failed: {reason}"
    if partial is not None:
        description += f" Evidence gathered before the failure: {partial['description']}"
    return {"labels": [FAILED_LABEL], "description": description, "best_hypothesis_ids": []}


def quote_tokens(tokens: list[str]) -> str:
    """The first 8 tokens as Python reprs, comma-separated, with " ..." when there are more."""
    return ", ".join(repr(t) for t in tokens[:8]) + (" ..." if len(tokens) > 8 else "")


def label(h: Hypothesis) -> str:
    """A short label for a hypothesis, read off its predicate (its text when it has none)."""
    pred = h.get("predicate") or {}
    kind = pred.get("type")
    if h.get("concept"):
        return f"{h['kind']}: {h['concept']['name']}"
    if kind == "token_set":
        return f"{h['kind']}: {quote_tokens(pred['tokens'][:4]).replace(' ...', '')}"
    if kind == "preceded_by":
        return f"after {quote_tokens(pred['tokens'][:3]).replace(' ...', '')}"
    if kind == "structural":
        return describe(pred).replace("the token ", "")
    return h["text"][:80]


def _subsumed(h: Hypothesis, by: Hypothesis) -> bool:
    """Whether most of `h`'s tokens are in `by`'s token set (the words of a named category are no
    second meaning of the category)."""
    # both tiers: a token the conclusion moved to the weak tier is still one of the set's words
    mine = token_set_words(h.get("predicate") or {})
    theirs = token_set_words(by.get("predicate") or {})
    return bool(mine) and len(mine & theirs) >= 0.5 * len(mine)


def _shares_triggers(h: Hypothesis, other: Hypothesis) -> bool:
    """Whether the two hypotheses can hold on a common token ('od' alone and 'od' after 'mel', a word
    list and a category holding one of its words): then they are one meaning described twice, not two."""
    return bool(trigger_words(h.get("predicate") or {}) & trigger_words(other.get("predicate") or {}))


def _concept_first(ranked: list[Hypothesis]) -> list[Hypothesis]:
    """`ranked` with a confirmed concept moved ahead of the word list it covers: the category passed
    the stronger test (its unseen members fired, its near misses did not), and on held-out contexts a
    word list and the category it belongs to score nearly alike, so the held-out ranking alone
    would often name the list."""
    concept = next((h for h in ranked if h.get("concept") and h["status"] == "confirmed"), None)
    top = ranked[0]
    if concept is None or top is concept or top.get("concept") or not _subsumed(top, concept):
        return ranked
    return [concept, *(h for h in ranked if h is not concept)]


def concept_sentence(h: Hypothesis, tests: dict | None) -> str:
    """What a concept hypothesis claims and how its tests came out, in words a scorer can use: the
    category, the position (on the word), seen and unseen members, near misses."""
    c = h["concept"]
    pred = h.get("predicate") or {}
    words = [t.strip() for t in pred.get("tokens", [])]
    out = f"Fires on words for {c['name']}, on the word itself, such as {quote_tokens(words[:6])}"
    if tests and tests["members_tested"]:
        out += (
            f"; probes: unseen members {quote_tokens(tests['fired'][:4]) or 'none'} fired "
            f"({tests['members_fired']}/{tests['members_tested']}), "
            f"{tests['near_misses_silent']}/{tests['near_misses_tested']} near misses "
            f"such as {quote_tokens(c['non_members'][:3])} stayed silent"
        )
    return out + "."


def conclude_from_evidence(ctx: dict, dead: bool = False) -> Conclusion:
    """The conclusion the rules draw from `ctx` (what `agents.summaries.for_conclude` builds).

    ctx: `hypotheses` (scored), `top` (seed contexts with normalised `acts`, strongest first),
    `strongest_probe` (an evidence item or None), `n_probes`. The best hypothesis is the
    highest-F1 confirmed non-control one; a second confirmed one of another kind that holds on
    none of its tokens makes the feature polysemantic (two labels). `dead` (the store says the
    feature never fired) gives the `DEAD` conclusion; a live feature without hypotheses gives `UNEXPLAINED`.
    """
    if dead or not ctx.get("hypotheses"):
        base = DEAD if dead else UNEXPLAINED
        return {**base, "labels": list(base["labels"]), "best_hypothesis_ids": []}
    # confirmed first, then by what generalises: r and F1 on the held-out seed contexts before in-loop F1
    ranked = sorted(
        [h for h in ctx["hypotheses"] if h.get("f1") is not None and h.get("role") != "control"],
        key=lambda h: (
            h["status"] == "confirmed",
            h.get("heldout_r") or 0.0,
            h.get("heldout_f1") or 0.0,
            h["f1"],
        ),
        reverse=True,
    )
    if not ranked:
        ranked = ctx["hypotheses"]
    ranked = _concept_first(ranked)
    best = [ranked[0]]
    for h in ranked[1:]:  # a second, confirmed, different hypothesis makes the feature polysemantic
        distinct = h["kind"] != best[0]["kind"] and not _shares_triggers(h, best[0])
        if h["status"] == "confirmed" and h.get("f1", 0) >= 0.4 and distinct:
            best.append(h)
            break
    b = best[0]
    if b.get("concept"):
        sentences = [concept_sentence(b, (ctx.get("concept_tests") or {}).get(b["id"]))]
    else:
        sentences = [f"Fires when {describe(b['predicate'])}" if b.get("predicate") else b["text"]]
    if b.get("f1") is not None:
        sentences[0] = sentences[0].rstrip(".") + (
            f" (token-level precision {b['precision']:.2f}, recall {b['recall']:.2f}; status {b['status']})."
        )
    top = (ctx.get("top") or [None])[0]
    if top:
        toks, acts = top["tokens"], top["acts"]
        pos = peak_position(acts)
        snippet = "".join(toks[max(skip_positions(), pos - 8) : pos + 1]).strip().replace("\n", " ")
        sentences.append(
            f'Its strongest corpus example ends "{snippet}" '
            f"(activation {acts[pos]:.2f} of max on {toks[pos]!r})."
        )
    probe = ctx.get("strongest_probe")
    if probe:
        sentences.append(
            f'Across {ctx.get("n_probes", 0)} probes the strongest was "{probe["text"][:80]}" '
            f"at {probe['normalized']:.2f} of max."
        )
    refuted = [h["id"] for h in ctx["hypotheses"] if h["status"] == "refuted"]
    if refuted:
        sentences.append(f"Refuted: {', '.join(refuted)}.")
    sentences += output_sentences(ctx.get("output_hypotheses") or [])
    return {
        "labels": [label(h) for h in best],
        "description": " ".join(sentences)[:1200],
        "best_hypothesis_ids": [h["id"] for h in best],
    }


def output_sentences(outputs: list[dict]) -> list[str]:
    """What the intervention experiments confirmed about the feature's output (output hypotheses as
    `sage.intervention.output` writes them), one sentence each; nothing when none was confirmed."""
    out = []
    for h in outputs:
        if h.get("status") == "confirmed":
            out.append(
                f"Output ({h['id']}, confirmed by intervention): it {h['text']} "
                f"(amplified {h['amplify_rise']:+.2f} nats, ablated {h['ablate_rise']:+.2f} nats "
                "vs controls)."
            )
    return out
