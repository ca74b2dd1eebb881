"""`offline`: a deterministic, rule-based explainer. No network, no LLM.

It reads the structured `context` each node sends (trigger tokens, preceding
tokens, structural shares, MI words, machine-checked predicate scores) and answers
with the same schemas an LLM would:

- hypothesize: a lexical hypothesis from the tokens carrying most activation mass,
  a contextual one from preceding tokens, a semantic one from MI-vocabulary words,
  a structural one when most active tokens share a property, and a control.
- design: minimal pairs (the trigger in a neutral frame vs. a non-trigger word in
  the same frame; the trigger with and without its preceding context) and negative
  controls. The design node adds corpus-retrieved probes itself.
- analyze: confirm / refute / refine by the predicate's precision and recall
  against the real activations; refinement adds tokens that carry unexplained
  activation and drops tokens that rarely fire.
- one_shot (the one-shot baseline): reads only the top contexts' token / activation pairs and
  names the tokens at their peaks, as a reader of those examples would; one explanation.
- conclude: the best-scoring hypotheses rendered as readable English by the shared
  rule-based renderer, `sage.hypotheses.conclusion.conclude_from_evidence`.
"""

from __future__ import annotations

from sage.hypotheses.conclusion import conclude_from_evidence, quote_tokens
from sage.hypotheses.predicates import describe
from sage.llm.base import Backend, LLMRequest, Usage
from sage.model.positions import peak_position, skip_positions

FRAMES = [
    "I keep thinking about{t} these days.",
    "She wrote{t} on the first page.",
    "They talked about{t} for an hour.",
]
FILLERS = [" the table", " a window", " something"]
STRUCTURAL_EXAMPLES = {
    "digit": ("In 1987 there were 42 new cases.", "In the spring there were many new cases."),
    "capitalized": ("Yesterday Maria met Peter in Boston.", "yesterday the girl met the boy in town."),
    "all_caps": ("The sign said STOP and WAIT.", "The sign said stop and wait."),
    "punctuation": ("Wait, what? Yes; no: maybe!", "Wait what yes no maybe"),
    "quote": ('He said "fine" and left.', "He said fine and left."),
    "newline": ("First line\nSecond line\nThird line", "First line, second line, third line"),
    "word_start": ("The dog ran home quickly.", "Thedogranhomequickly."),
    "word_continuation": ("The unbelievable transformation continued.", "The big change went on."),
}
CONFIRM_PRECISION, CONFIRM_RECALL, REFUTE_F1 = 0.5, 0.5, 0.15


class OfflineExplainer(Backend):
    name = "offline"
    price_model = None

    # the rules read the structured context only, never the rendered prompt or the schema
    def _call(
        self,
        messages: list[dict],  # noqa: ARG002
        schema: dict,  # noqa: ARG002
        req: LLMRequest,
    ) -> tuple[dict, Usage]:
        handlers = {
            "hypothesize": _hypothesize,
            "design": _design,
            "analyze": _analyze,
            "conclude": _conclude,
            "one_shot": _one_shot,
        }
        handler = handlers.get(req.task)
        if handler is None:
            raise NotImplementedError(f"the offline explainer has no rule for task {req.task!r}")
        return handler(req.context), Usage()


# -- hypothesize ------------------------------------------------------------------------------------
def _hypothesize(ctx: dict) -> dict:
    hyps = []
    triggers = [t for t, _ in ctx["trigger_tokens"]]
    if triggers:
        plural = "s" if len(triggers) > 1 else ""
        hyps.append(
            {
                "text": f"Fires on the token{plural} {quote_tokens(triggers)} wherever it appears.",
                "kind": "lexical",
                "role": "primary",
                "predicate": {"type": "token_set", "tokens": triggers},
            }
        )
    prev = [t for t, share in ctx["preceding"] if share >= 0.15][:6] or [t for t, _ in ctx["preceding"][:3]]
    if prev:
        hyps.append(
            {
                "text": f"Fires on tokens that follow {quote_tokens(prev)} "
                "(the context, not the token itself, matters).",
                "kind": "contextual",
                "role": "alternative",
                "predicate": {"type": "preceded_by", "tokens": prev, "window": 2},
            }
        )
    words = [w for w, _ in ctx.get("mi_words", [])[:12]]
    if words:
        hyps.append(
            {
                "text": f"Responds to the concept shared by words like {quote_tokens(words[:6])}.",
                "kind": "semantic",
                "role": "alternative",
                "predicate": {"type": "token_set", "tokens": words},
            }
        )
    prop, share = max(ctx["structure"].items(), key=lambda kv: kv[1], default=(None, 0.0))
    if prop and share >= 0.6 and prop not in ("word_start", "word_continuation"):
        where = describe({"type": "structural", "property": prop})
        hyps.append(
            {
                "text": f"A structural feature: fires where {where}.",
                "kind": "syntactic-structural",
                "role": "alternative",
                "predicate": {"type": "structural", "property": prop},
            }
        )
    hyps.append(
        {
            "text": "Control: fires on any word-initial token regardless of identity "
            "(a generic position feature).",
            "kind": "syntactic-structural",
            "role": "control",
            "predicate": {"type": "structural", "property": "word_start"},
        }
    )
    if len(hyps) < 3:  # too little signal for two content hypotheses: add a capitalisation alternative
        hyps.insert(
            1,
            {
                "text": "Fires on capitalised tokens.",
                "kind": "syntactic-structural",
                "role": "alternative",
                "predicate": {"type": "structural", "property": "capitalized"},
            },
        )
    return {"hypotheses": hyps[:6]}


# -- one-shot baseline ------------------------------------------------------------------------------
#: a peak token is named when it peaks at least this many of the top contexts (else every peak token is)
ONE_SHOT_MIN_PEAKS = 2
ONE_SHOT_MAX_TOKENS = 8


def _one_shot(ctx: dict) -> dict:
    """One explanation from token / activation pairs only: the tokens at the contexts' peaks."""
    counts: dict[str, int] = {}
    for c in ctx["top"]:
        if c["acts"] and max(c["acts"]) > 0:
            tok = c["tokens"][peak_position(c["acts"], skip=0)]
            counts[tok] = counts.get(tok, 0) + 1
    if not counts:
        return {"explanation": "No token in the examples is active.", "predicate": None}
    ranked = sorted(counts, key=lambda t: -counts[t])  # stable: first seen first among equals
    tokens = [t for t in ranked if counts[t] >= ONE_SHOT_MIN_PEAKS] or ranked
    tokens = tokens[:ONE_SHOT_MAX_TOKENS]
    plural = "s" if len(tokens) > 1 else ""
    return {
        "explanation": f"Fires on the token{plural} {quote_tokens(tokens)}.",
        "predicate": {"type": "token_set", "tokens": tokens},
    }


# -- design -----------------------------------------------------------------------------------------
def _design(ctx: dict) -> dict:
    probes: list[dict] = []
    tested = set(ctx.get("tested", []))
    skip = skip_positions()
    negatives = ["".join(n["tokens"][skip:])[:200] for n in ctx.get("negatives", [])]

    def add(hid, text, purpose, expect, pair_of=None):
        if text and text not in tested and all(p["text"] != text for p in probes):
            probes.append(
                {"hypothesis_id": hid, "text": text, "purpose": purpose, "expect": expect, "pair_of": pair_of}
            )
            return len(probes) - 1
        return None

    rnd = ctx.get("round", 0)
    for h in ctx["hypotheses"]:
        pred, hid = h.get("predicate") or {}, h["id"]
        kind = pred.get("type")
        if kind == "token_set":
            for j, tok in enumerate(pred["tokens"][:3]):
                frame = FRAMES[(j + rnd) % len(FRAMES)]
                t = tok if tok.startswith(" ") else " " + tok.strip()
                a = add(hid, frame.format(t=t), "minimal_pair", "high")
                if a is not None:
                    add(hid, frame.format(t=FILLERS[(j + rnd) % len(FILLERS)]), "minimal_pair", "low", a)
        elif kind == "preceded_by":
            for ex in ctx.get("top", [])[:2]:
                toks, acts = ex["tokens"], ex["acts"]
                pos = peak_position(acts, skip)
                with_ctx = "".join(toks[max(skip, pos - 6) : pos + 1])
                a = add(hid, with_ctx, "minimal_pair", "high")
                if a is not None:  # the same trigger without its preceding context
                    bare = "Then" + toks[pos] if toks[pos].startswith(" ") else "Then " + toks[pos]
                    add(hid, bare, "minimal_pair", "low", a)
        elif kind == "structural":
            pos_text, neg_text = STRUCTURAL_EXAMPLES[pred["property"]]
            a = add(hid, pos_text, "minimal_pair", "high")
            add(hid, neg_text, "minimal_pair", "low", a)
        if negatives:
            add(hid, negatives[(len(probes) + rnd) % len(negatives)], "negative_control", "low")
    if not probes:  # never answer with no probe: one plain negative control
        probes = [
            {
                "hypothesis_id": ctx["hypotheses"][0]["id"],
                "text": "A plain sentence about nothing in particular.",
                "purpose": "negative_control",
                "expect": "low",
                "pair_of": None,
            }
        ]
    return {"probes": probes[: max(1, ctx.get("max_probes", len(probes)))]}


# -- analyze ----------------------------------------------------------------------------------------
def _analyze(ctx: dict) -> dict:
    updates = []
    stats = ctx.get("token_stats", {})
    results = ctx.get("results", [])
    for h in ctx["hypotheses"]:
        if h["status"] in ("confirmed", "refuted"):
            continue
        own = [r for r in results if r["hypothesis_id"] == h["id"]]
        agree = sum(r["agrees"] for r in own)
        p, r, f1 = h.get("precision"), h.get("recall"), h.get("f1")
        if p is None:
            updates.append({"hypothesis_id": h["id"], "status": "open", "note": "no predicate to check"})
            continue
        note = f"precision {p:.2f}, recall {r:.2f}; {agree}/{len(own)} of its probes matched expectations"
        if p >= CONFIRM_PRECISION and r >= CONFIRM_RECALL and agree >= 0.66 * len(own):
            updates.append({"hypothesis_id": h["id"], "status": "confirmed", "note": note})
        elif f1 < REFUTE_F1 or h.get("refinements", 0) >= ctx.get("max_refinements", 2):
            status = "refuted" if f1 < 0.4 else "confirmed"
            updates.append({"hypothesis_id": h["id"], "status": status, "note": note + " (final decision)"})
        else:
            new_pred = _refine(h["predicate"], stats, ctx.get("preceding", []))
            if new_pred == h["predicate"]:
                updates.append(
                    {"hypothesis_id": h["id"], "status": "open", "note": note + "; nothing to refine"}
                )
            else:
                updates.append(
                    {
                        "hypothesis_id": h["id"],
                        "status": "refined",
                        "new_predicate": new_pred,
                        "new_text": _restate(h, new_pred),
                        "note": note,
                    }
                )
    return {"updates": updates}


def _refine(pred: dict, stats: dict, preceding: list) -> dict:
    """Keep the tokens that usually fire; add tokens carrying unexplained activation mass."""
    kind = pred.get("type")
    if kind == "token_set":
        keep = [
            t
            for t in pred["tokens"]
            if t.strip().lower() not in stats
            or stats[t.strip().lower()]["active"] / max(stats[t.strip().lower()]["seen"], 1) >= 0.3
        ]
        have = {t.strip().lower() for t in keep}
        add = [
            t
            for t, s in stats.items()
            if t not in have and s["active"] >= 2 and s["active"] / s["seen"] >= 0.5
        ][:4]
        tokens = (keep + add)[:16]
        return {**pred, "tokens": tokens} if tokens else pred
    if kind == "preceded_by":
        strong = [t for t, share in preceding if share >= 0.2][:6]
        return {**pred, "tokens": strong} if strong and strong != pred["tokens"] else pred
    return pred


def _restate(h: dict, pred: dict) -> str:
    return f"{h['text'].split(' (refined')[0]} (refined: {describe(pred)})"


# -- conclude ---------------------------------------------------------------------------------------
def _conclude(ctx: dict) -> dict:
    return conclude_from_evidence(ctx)
