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

import sys

from sage.hypotheses.conclusion import conclude_from_evidence, quote_tokens
from sage.hypotheses.experiments import CONCEPT_AGREEMENT, NEUTRAL_FRAMES
from sage.hypotheses.predicates import WEAK_VALUE, describe, norm_token
from sage.hypotheses.records import REFINEMENT_REJECTED
from sage.lexicon.concepts import Concept, Taxonomy, broader_concept, shared_concept
from sage.llm.base import Backend, LLMRequest, Usage
from sage.model.positions import peak_position, skip_positions

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
#: without occurrence tests, a token stays in a refined set when it was active at this share of the
#: positions seen so far
SEEN_KEEP = 0.3


#: `OfflineExplainer(taxonomy=AUTO)` loads WordNet when first needed
AUTO = "auto"


class OfflineExplainer(Backend):
    name = "offline"
    price_model = None

    def __init__(self, taxonomy: Taxonomy | None | str = AUTO, **options):
        """taxonomy: the lexicon that names concepts (`AUTO`: WordNet from `sage setup`; None: none)."""
        super().__init__(**options)
        self._taxonomy = taxonomy

    def taxonomy(self) -> Taxonomy | None:
        with self._lock:
            if self._taxonomy == AUTO:
                from sage.lexicon.wordnet import load_taxonomy

                self._taxonomy = load_taxonomy()
                if self._taxonomy is None:
                    print(
                        "[sage] WordNet is not installed (run `sage setup`): the offline explainer "
                        "will not name concepts",
                        file=sys.stderr,
                    )
        return self._taxonomy

    # the rules read the structured context only, never the rendered prompt or the schema
    def _call(
        self,
        messages: list[dict],  # noqa: ARG002
        schema: dict,  # noqa: ARG002
        req: LLMRequest,
    ) -> tuple[dict, Usage]:
        if req.task == "hypothesize":
            return _hypothesize(req.context, self.taxonomy()), Usage()
        if req.task == "analyze":
            return _analyze(req.context, self.taxonomy()), Usage()
        handlers = {
            "design": _design,
            "conclude": _conclude,
            "one_shot": _one_shot,
        }
        handler = handlers.get(req.task)
        if handler is None:
            raise NotImplementedError(f"the offline explainer has no rule for task {req.task!r}")
        return handler(req.context), Usage()


# -- hypothesize ------------------------------------------------------------------------------------
#: unseen members a concept hypothesis predicts (and the agent probes), at most
CONCEPT_MEMBERS = 12
#: a trigger token outside the concept still joins its predicate when it carries this share of the mass
CONCEPT_EXTRA_SHARE = 0.05


def concept_name(c: Concept) -> str:
    """ "colour" -> "chromatic color (a kind of color)": the category and, for context, its parent."""
    return f"{c.name} (a kind of {c.parent})" if c.parent else c.name


def _concept_hypothesis(c: Concept, triggers: list, role: str) -> dict:
    """ "Fires on words for <category>": its predicate is the seen members, the unseen members it
    predicts, and any other strong trigger token; its concept lists what the agent probes with."""
    extra = [
        t for t, share in triggers if share >= CONCEPT_EXTRA_SHARE and t.strip().lower() not in c.covered
    ]
    unseen = list(c.unseen[:CONCEPT_MEMBERS])
    also = f"; also on {quote_tokens(extra)}" if extra else ""
    return {
        "text": f"Fires on words for {concept_name(c)}, on the word itself: "
        f"seen {quote_tokens(list(c.covered))}, "
        f"so unseen members such as {quote_tokens(unseen[:4])} should fire too{also}.",
        "kind": "semantic",
        "role": role,
        "predicate": {"type": "token_set", "tokens": list(c.covered) + unseen + extra},
        "concept": {
            "name": concept_name(c),
            "category": c.category,
            "members": unseen,
            "non_members": list(c.near_misses),
        },
    }


def _hypothesize(ctx: dict, tax: Taxonomy | None = None) -> dict:
    hyps = []
    triggers = [(t, share) for t, share in ctx["trigger_tokens"]]
    active = [(t, share) for t, share in ctx.get("active_tokens") or triggers]
    concept = shared_concept(active, tax) if tax and active else None
    if concept:
        hyps.append(_concept_hypothesis(concept, triggers, "primary"))
    if triggers:
        tokens = [t for t, _ in triggers]
        plural = "s" if len(tokens) > 1 else ""
        hyps.append(
            {
                "text": f"Fires on the token{plural} {quote_tokens(tokens)} wherever it appears"
                + (" (these words only, not their category)." if concept else "."),
                "kind": "lexical",
                "role": "alternative" if concept else "primary",
                "predicate": {"type": "token_set", "tokens": tokens},
            }
        )
    preceding = [(t, share) for t, share in ctx["preceding"]]
    before = shared_concept(preceding, tax) if tax and preceding and not concept else None
    prev = [t for t, share in preceding if share >= 0.15][:6] or [t for t, _ in preceding[:3]]
    if before:
        words = list(before.covered) + list(before.unseen[:CONCEPT_MEMBERS])
        hyps.append(
            {
                "text": f"Fires on the token right after a word for {concept_name(before)} "
                f"(seen {quote_tokens(list(before.covered))}), not on the word itself.",
                "kind": "contextual",
                "role": "alternative",
                "predicate": {"type": "preceded_by", "tokens": words, "window": 1},
            }
        )
    elif prev:
        hyps.append(
            {
                "text": f"Fires on tokens that follow {quote_tokens(prev)} "
                "(the context, not the token itself, matters).",
                "kind": "contextual",
                "role": "alternative",
                "predicate": {"type": "preceded_by", "tokens": prev, "window": 2},
            }
        )
    conj = _conjunction(triggers, preceding)
    if conj:
        hyps.append(conj)
    mi = [(w, 1.0) for w, _ in ctx.get("mi_words", [])[:20]]
    mi_concept = shared_concept(mi, tax) if tax and mi and not concept else None
    words = [w for w, _ in mi[:12]]
    if mi_concept:
        hyps.append(_concept_hypothesis(mi_concept, [], "alternative"))
        hyps[-1]["text"] += " (From the words its decoder direction promotes: MI vocabulary.)"
    elif words:
        hyps.append(
            {
                "text": f"Fires on the words its decoder direction promotes (MI vocabulary), "
                f"such as {quote_tokens(words[:6])}.",
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
    content = [h for h in hyps if h["role"] != "control"][:5]
    return {"hypotheses": content + [h for h in hyps if h["role"] == "control"]}


#: a preceding token joins a conjunction when it comes just before at least this share of active positions
CONJUNCTION_SHARE = 0.3
#: a trigger token joins a conjunction when it carries at least this share of the activation mass
CONJUNCTION_TOKEN_SHARE = 0.2


def _conjunction(triggers: list, preceding: list) -> dict | None:
    """ "Fires on <trigger> when <word> comes just before": the strongest trigger tokens in the context
    that most often precedes the active positions. A token that fires only after certain words ('be'
    after 'should') is named with its condition, so its occurrences elsewhere are not predicted."""
    # the dominant trigger tokens only: a weak token in the set would hide, in the occurrence tests,
    # whether the strong one needs the condition
    tokens = [t for t, share in triggers if share >= CONJUNCTION_TOKEN_SHARE][:2]
    before = [t for t, share in preceding if share >= CONJUNCTION_SHARE and t not in tokens][:3]
    if not tokens or not before:
        return None
    return {
        "text": f"Fires on {quote_tokens(tokens)} when {quote_tokens(before)} comes within the 2 tokens "
        "before it (the word in that context, not the word alone).",
        "kind": "contextual",
        "role": "alternative",
        "predicate": {
            "type": "and",
            "all": [
                {"type": "token_set", "tokens": tokens},
                {"type": "preceded_by", "tokens": before, "window": 2},
            ],
        },
    }


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
                frame = NEUTRAL_FRAMES[(j + rnd) % len(NEUTRAL_FRAMES)]
                t = tok if tok.startswith(" ") else " " + tok.strip()
                a = add(hid, frame.format(t=t), "minimal_pair", "high")
                if a is not None:
                    add(hid, frame.format(t=FILLERS[(j + rnd) % len(FILLERS)]), "minimal_pair", "low", a)
        elif kind in ("preceded_by", "and"):  # the trigger in its context, then without that context
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
def _analyze(ctx: dict, tax: Taxonomy | None = None) -> dict:
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
        split = ctx.get("conjunction_tests", {}).get(h["id"])
        if split and _condition_not_needed(split):
            (n_with, _, sum_with), (n, active, total) = split["with"], split["without"]
            updates.append(
                {
                    "hypothesis_id": h["id"],
                    "status": "refuted",
                    "note": f"{note}; its words fire without its condition about as strongly (mean "
                    f"{total / n:.2f} over {n} occurrences, {active} active, against "
                    f"{sum_with / max(n_with, 1):.2f} with it): the condition adds nothing",
                }
            )
            continue
        tests = ctx.get("concept_tests", {}).get(h["id"])
        if h.get("concept") and tests and tests["members_tested"]:
            update = _analyze_concept(h, tests, note, tax)
            if update is not None:
                updates.append(update)
                continue
        # the loop rejected the last refinement (it did not generalise): judge what is there instead,
        # unless it dropped tokens: then they fire somewhat where the held-out data look, and the
        # milder step, keeping them in the weak tier, is put to the gate once
        last = (h.get("history") or [{}])[-1].get("note") or ""
        rejected = REFINEMENT_REJECTED in last
        milder = rejected and DROPPED in last
        # a concept is tested as a category (unseen members, near misses; _analyze_concept drops the
        # members that stayed silent): pruning its list by occurrences would turn it into a word list
        tiered = (
            h["predicate"]
            if h.get("concept")
            else _tiered(h["predicate"], ctx.get("occurrences"), ctx.get("occurrence_rule"), drop=not milder)
        )
        capped = h.get("refinements", 0) >= ctx.get("max_refinements", 2)
        if tiered != h["predicate"] and not capped and (milder or not rejected):  # before any verdict
            updates.append(
                {
                    "hypothesis_id": h["id"],
                    "status": "refined",
                    "new_predicate": tiered,
                    "new_text": _restate(h, tiered),
                    "note": f"{note}; {_tier_note(h['predicate'], tiered)}",
                }
            )
        elif p >= CONFIRM_PRECISION and r >= CONFIRM_RECALL and agree >= 0.66 * len(own):
            updates.append({"hypothesis_id": h["id"], "status": "confirmed", "note": note})
        elif f1 < REFUTE_F1 or capped:
            status = "refuted" if f1 < 0.4 else "confirmed"
            updates.append({"hypothesis_id": h["id"], "status": status, "note": note + " (final decision)"})
        else:
            new_pred = _refine(
                h["predicate"],
                stats,
                ctx.get("preceding", []),
                ctx.get("occurrences", {}),
                ctx.get("occurrence_rule"),
            )
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


#: a conjunction is refuted when its words fire without its condition at least this share as strongly
#: (mean normalised activation) as with it, over at least CONJUNCTION_MIN occurrences without it
CONJUNCTION_NOT_NEEDED, CONJUNCTION_MIN = 0.5, 3


def _condition_not_needed(split: dict) -> bool:
    """Whether occurrence tests show a conjunction's words firing about as strongly without its
    condition: by mean activation, not by how often they pass the activity threshold, since a word
    can be weakly active everywhere and strong only in its context ('thing' after 'one')."""
    (n_with, _, sum_with), (n_without, _, sum_without) = split["with"], split["without"]
    if n_without < CONJUNCTION_MIN:
        return False
    if n_with == 0:  # never seen with its condition: it fires without it, if at all
        return sum_without > 0
    return sum_without / n_without >= CONJUNCTION_NOT_NEEDED * (sum_with / n_with)


def _analyze_concept(h: dict, tests: dict, note: str, tax: Taxonomy | None = None) -> dict | None:
    """A concept hypothesis after its concept tests: refuted when its unseen members stay silent (the
    feature knows the words it was seen with, not the category); broadened to the parent category when
    its members fire and so do its near misses (the feature's category is wider); refined to the
    members that fired when only some did; None (the generic rules decide) when the tests support it."""
    fired, tested = tests["members_fired"], tests["members_tested"]
    note = (
        f"{note}; concept tests: {fired}/{tested} unseen members fired, "
        f"{tests['near_misses_silent']}/{tests['near_misses_tested']} near misses silent"
    )
    if tested >= 2 and fired < (1 - CONCEPT_AGREEMENT) * tested:
        return {"hypothesis_id": h["id"], "status": "refuted", "note": note + " (not the category)"}
    broader = _broaden(h, tests, tax)
    if broader is not None:
        return {**broader, "note": f"{note}; the near misses fire too: {broader['note']}"}
    if tests["supported"] or not tests["silent"]:
        return None
    silent = {w.strip().lower() for w in tests["silent"]}
    tokens = [t for t in h["predicate"]["tokens"] if t.strip().lower() not in silent]
    if not tokens or tokens == h["predicate"]["tokens"]:
        return None
    pred = {**h["predicate"], "tokens": tokens}
    return {
        "hypothesis_id": h["id"],
        "status": "refined",
        "new_predicate": pred,
        "new_text": _restate(h, pred),
        "note": note + f"; dropped the members whose probes stayed silent: {quote_tokens(sorted(silent))}",
    }


#: a tested token weak where it occurs (`reliable_tokens` leaves it out) stays in the token set's `weak`
#: tier when its mean activation there is at least this share of the strongest tested token's, or the
#: feature is active at at least `WEAK_ACTIVE_SHARE` of its occurrences; else it is dropped. Why
#: WEAK_VALUE / 2: positions predicted at v (the strong tier's at 1) raise a sparse mask's Pearson r
#: about when their mean activation exceeds v / 2 of the strong tier's (the rule of `reliable_tokens`
#: at v = 1).
WEAK_MEAN_SHARE = WEAK_VALUE / 2
WEAK_ACTIVE_SHARE = 0.5


def _tiered(pred: dict, occurrences: dict | None, rule: dict | None, drop: bool = True) -> dict:
    """A token-set predicate with its tested tokens (at least `rule["min"]` occurrence tests) sorted
    into tiers by how the feature responds where they occur: strong (`reliable_tokens` of all its
    tested tokens, in `tokens`), weak (`WEAK_MEAN_SHARE`, `WEAK_ACTIVE_SHARE`; in `weak`) and the
    rest (dropped; with `drop` False, weak too). Untested tokens keep their tier. `pred` itself for other
    predicates or without tests; the strong tier is never emptied."""
    if pred.get("type") != "token_set" or not occurrences or not rule:
        return pred
    weak_in = pred.get("weak", [])
    own = [*pred["tokens"], *weak_in]
    tested = {
        k: occurrences[k]
        for k in map(norm_token, own)
        if k in occurrences and occurrences[k]["n"] >= rule["min"]
    }
    if not tested:
        return pred
    strong = set(reliable_tokens({t: o["mean"] for t, o in tested.items()}))
    top = max(o["mean"] for o in tested.values())

    def tier(t: str, default: str) -> str:
        key = norm_token(t)
        if key not in tested:
            return default
        if key in strong:
            return "strong"
        o = tested[key]
        usual = o["active"] >= WEAK_ACTIVE_SHARE * o["n"]
        return "weak" if usual or o["mean"] >= WEAK_MEAN_SHARE * top or not drop else "drop"

    tiers = [(t, tier(t, "strong")) for t in pred["tokens"]] + [(t, tier(t, "weak")) for t in weak_in]
    tokens = [t for t, k in tiers if k == "strong"] or pred["tokens"][:1]
    weak = [t for t, k in tiers if k == "weak" and t not in tokens]
    out = {k: v for k, v in pred.items() if k != "weak"}
    return {**out, "tokens": tokens, **({"weak": weak} if weak else {})}


def _refine(
    pred: dict, stats: dict, preceding: list, occurrences: dict | None = None, rule: dict | None = None
) -> dict:
    """Keep the tokens that usually fire; add tokens carrying unexplained activation mass.

    Tokens with at least `rule["min"]` occurrence tests (contexts sampled because they contain the
    token) are sorted into strong, weak and dropped by their activation there (`_tiered`). A token
    without them is judged by its activity in the contexts seen so far (kept when active at >=
    `SEEN_KEEP` of them), which overstates it: most of those contexts were chosen because the feature
    fired there. A refinement never empties the strong tier."""
    kind = pred.get("type")
    if kind == "token_set":
        pred = _tiered(pred, occurrences, rule)
        tested = {t for t, o in (occurrences or {}).items() if rule and o["n"] >= rule["min"]}

        def kept(t: str) -> bool:
            key = norm_token(t)
            if key in tested:
                return True  # `_tiered` has judged it
            s = stats.get(key)
            return s is None or s["active"] / max(s["seen"], 1) >= SEEN_KEEP

        keep = [t for t in pred["tokens"] if kept(t)] or pred["tokens"][:1]
        have = {norm_token(t) for t in [*keep, *pred.get("weak", [])]}
        add = [
            t
            for t, s in stats.items()
            if t not in have and s["active"] >= 2 and s["active"] / s["seen"] >= 0.5 and t not in tested
        ][:4]
        tokens = (keep + add)[:16]
        return {**pred, "tokens": tokens} if tokens else pred
    if kind == "preceded_by":
        strong = [t for t, share in preceding if share >= 0.2][:6]
        return {**pred, "tokens": strong} if strong and strong != pred["tokens"] else pred
    return pred


DROPPED = "dropped tokens that are weak and mostly silent where they occur"


def _tier_note(before: dict, after: dict) -> str:
    """What `_tiered` changed, in words, for a hypothesis's history."""
    norm = {norm_token(t) for t in [*after["tokens"], *after.get("weak", [])]}
    was_weak = {norm_token(t) for t in before.get("weak", [])}
    demoted = [t for t in after.get("weak", []) if norm_token(t) not in was_weak]
    promoted = [t for t in after["tokens"] if norm_token(t) in was_weak]
    dropped = [t for t in [*before["tokens"], *before.get("weak", [])] if norm_token(t) not in norm]
    parts = [
        f"{what} (occurrence tests): {quote_tokens(toks)}"
        for what, toks in (
            (DROPPED, dropped),
            ("moved to the weak tier tokens that fire, but weakly, where they occur", demoted),
            ("moved to the strong tier", promoted),
        )
        if toks
    ]
    return "; ".join(parts)


def reliable_tokens(means: dict[str, float]) -> list[str]:
    """The tokens worth naming, from their mean normalised activation where they occur (occurrence
    tests), strongest first: those whose mean is at least half the strongest token's. Why half: for a
    sparse feature, adding positions whose mean activation is mu_g to a mask whose positions average
    mu_1 raises the mask's Pearson r with the activations about when mu_g > mu_1 / 2 (r ~ (mu_1 - mu_0)
    sqrt(p), p the mask's share of positions); measured against the strongest token rather than the
    mask's average, the rule also keeps out the weak, frequent tokens that lower the share of
    retrieved contexts that fire strongly. The held-out gate then keeps the result only when r rises."""
    if not means:
        return []
    top = max(means.values())
    return [t for t, m in sorted(means.items(), key=lambda kv: -kv[1]) if m >= 0.5 * top]


def _broaden(h: dict, tests: dict, tax: Taxonomy | None) -> dict | None:
    """The update that names the parent category, when the members fired (>= CONCEPT_AGREEMENT of
    them) and the near misses did not stay silent (< CONCEPT_AGREEMENT of at least 2); None otherwise,
    or without a taxonomy or a parent worth naming."""
    c = h["concept"]
    members_ok = tests["members_fired"] >= CONCEPT_AGREEMENT * max(tests["members_tested"], 1)
    misses_fire = (
        tests["near_misses_tested"] >= 2
        and tests["near_misses_silent"] < CONCEPT_AGREEMENT * tests["near_misses_tested"]
    )
    if tax is None or not c.get("category") or not (members_ok and misses_fire):
        return None
    # what the feature is known to fire on: the words it was seen with, and the members and near misses
    # that fired in the tests (untested members were only predictions)
    untested = set(c["members"]) - set(tests["fired"])
    # (a near miss that names an ancestor, "mammal" for "placental", is not a member to test around)
    above = tax.ancestors(c["category"])
    fired_misses = [w for w in tests["near_misses_fired"] if not set(tax.senses(w)[:1]) & above]
    kept = [(t, 1.0) for t in h["predicate"]["tokens"] if t not in untested]
    seen = [(t, 1.0) for t in dict.fromkeys([t for t, _ in kept] + fired_misses)]
    wider = broader_concept(c["category"], seen, tax)
    if wider is None or not wider.unseen:
        return None
    # "also on" words come from what the hypothesis already named, not from near misses outside it
    new = _concept_hypothesis(wider, kept, h["role"])
    return {
        "hypothesis_id": h["id"],
        "status": "refined",
        "new_predicate": new["predicate"],
        "new_text": new["text"],
        "new_concept": new["concept"],
        "note": f"broadened from {c['name']!r} to {new['concept']['name']!r}",
    }


def _restate(h: dict, pred: dict) -> str:
    return f"{h['text'].split(' (refined')[0]} (refined: {describe(pred)})"


# -- conclude ---------------------------------------------------------------------------------------
def _conclude(ctx: dict) -> dict:
    return conclude_from_evidence(ctx)
