"""Machine-checkable hypotheses about where a feature fires.

A predicate is a JSON object (schema: `prompts/schemas/predicate.json`) evaluated
per token of a tokenised text; the same evaluator serves the offline explainer,
the agent's analysis and the offline scorer. Types:

- `{"type": "token_set", "tokens": [...], "weak": [...], "case_sensitive": false}`: the token
  (leading space stripped) is one of `tokens` (where the feature fires strongly) or of the optional
  `weak` (where it fires, but more weakly). `predicate_values` grades the two; a mask holds on both.
- `{"type": "regex", "pattern": "..."}`: the token matches (re.search).
- `{"type": "preceded_by", "tokens": [...], "window": 3}`: one of `tokens` occurs
  among the previous `window` tokens.
- `{"type": "structural", "property": P}` with P in STRUCTURAL.
- `{"type": "and", "all": [...]}`, `{"type": "or", "any": [...]}`, `{"type": "not", "arg": {...}}`.

The first `ENGINE.skip_positions` positions (the attention sink) are never a match.

Why a weak tier: a feature often fires hard on a few tokens and softly on more. One flat list must
choose between naming only the peaks (which misses the soft positions) and naming everything (which
says the soft tokens fire as hard as the peaks). A graded list says both, as a careful reader would:
"fires on 'well'; more weakly on 'good', 'fine'".
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

from sage.model.positions import skip_positions

STRUCTURAL: dict[str, Callable[[str], bool]] = {
    "capitalized": lambda t: t.strip()[:1].isupper(),
    "all_caps": lambda t: len(t.strip()) > 1 and t.strip().isupper(),
    "digit": lambda t: any(c.isdigit() for c in t),
    "punctuation": lambda t: bool(t.strip()) and all(c in string.punctuation for c in t.strip()),
    "quote": lambda t: any(c in "\"'“”‘’`" for c in t),
    "newline": lambda t: "\n" in t,
    "word_start": lambda t: t[:1] == " ",
    "word_continuation": lambda t: bool(t) and t[:1].isalpha(),
}


def norm_token(tok: str, case_sensitive: bool = False) -> str:
    t = tok.strip()
    return t if case_sensitive else t.lower()


#: the activation `predicate_values` predicts where only a `weak` token matches, the strong tier's being 1
WEAK_VALUE = 0.5


def predicate_mask(pred: dict, tokens: Sequence[str]) -> list[bool]:
    """Evaluate `pred` at every position of `tokens` ([T] -> [T]); the sink positions are always False."""
    out = _eval(pred, list(tokens))
    _clear_sink(out)
    return out


def body_mask(pred: dict, tokens: Sequence[str]) -> list[bool]:
    """`predicate_mask` of tokens that come without their sink, e.g. a context cut after it
    ([T] -> [T]): placeholder sink positions keep the evaluation aligned, then are cut off."""
    skip = skip_positions()
    return predicate_mask(pred, [""] * skip + list(tokens))[skip:]


def predicate_values(pred: dict, tokens: Sequence[str]) -> list[float]:
    """The activation `pred` predicts at every position of `tokens` ([T] -> [T], in [0, 1]): 1 where it
    holds on its strong tier, `WEAK_VALUE` where it holds only through a token set's `weak` tokens, 0
    elsewhere and on the sink. Equals the mask (1/0) for a predicate without weak tokens."""
    full = predicate_mask(pred, tokens)
    strong_pred = strong_part(pred)
    if strong_pred == pred:  # no weak tier: the mask is the prediction (one evaluation, not two)
        return [float(f) for f in full]
    strong = predicate_mask(strong_pred, tokens)
    return [1.0 if s else WEAK_VALUE if f else 0.0 for s, f in zip(strong, full)]


def strong_part(pred: dict) -> dict:
    """`pred` without the `weak` tiers of its token sets: where the explanation says the feature fires
    strongly. A token set inside a `not` keeps its weak tokens (dropping them would widen the `not`)."""
    kind = pred.get("type")
    if kind == "token_set" and pred.get("weak"):
        return {k: v for k, v in pred.items() if k != "weak"}
    if kind == "and":
        return {**pred, "all": [strong_part(p) for p in pred["all"]]}
    if kind == "or":
        return {**pred, "any": [strong_part(p) for p in pred["any"]]}
    return pred


def token_set_words(pred: dict, case_sensitive: bool = False) -> set[str]:
    """Every token a token set names, strong and weak tiers alike, normalised (`norm_token`)."""
    return {norm_token(t, case_sensitive) for t in [*pred.get("tokens", []), *pred.get("weak", [])]}


def trigger_words(pred: dict) -> set[str]:
    """The words of every token set inside `pred` (through `and` and `or`, both tiers; not through a
    `not`, whose words are where it does not hold), normalised lower-case: the tokens it can hold on."""
    kind = pred.get("type")
    if kind == "token_set":
        return token_set_words(pred)
    parts = pred.get("all", []) if kind == "and" else pred.get("any", []) if kind == "or" else []
    return set().union(*(trigger_words(p) for p in parts))


def _clear_sink(mask: list[bool]) -> None:
    """Set the sink positions (the first `skip_positions()`) of `mask` to False, in place."""
    skip = min(skip_positions(), len(mask))
    mask[:skip] = [False] * skip


def _eval(pred: dict, toks: list[str]) -> list[bool]:
    kind = pred.get("type")
    n = len(toks)
    if kind == "token_set":
        cs = bool(pred.get("case_sensitive", False))
        allowed = token_set_words(pred, cs)
        return [norm_token(t, cs) in allowed and norm_token(t, cs) != "" for t in toks]
    if kind == "regex":
        rx = re.compile(pred["pattern"])
        return [bool(rx.search(t)) for t in toks]
    if kind == "preceded_by":
        cs = bool(pred.get("case_sensitive", False))
        allowed = {norm_token(t, cs) for t in pred.get("tokens", [])}
        w = int(pred.get("window", 3))
        hits = [norm_token(t, cs) in allowed for t in toks]
        _clear_sink(hits)  # a sink token never counts as preceding context
        return [any(hits[max(0, i - w) : i]) for i in range(n)]
    if kind == "structural":
        fn = STRUCTURAL[pred["property"]]
        return [fn(t) for t in toks]
    if kind == "and":
        parts = [_eval(p, toks) for p in pred["all"]]
        return [all(col) for col in zip(*parts)] if parts else [False] * n
    if kind == "or":
        parts = [_eval(p, toks) for p in pred["any"]]
        return [any(col) for col in zip(*parts)] if parts else [False] * n
    if kind == "not":
        return [not v for v in _eval(pred["arg"], toks)]
    raise ValueError(f"unknown predicate type {kind!r}")


def describe(pred: dict) -> str:
    """Readable English for a predicate (used by the offline explainer's prose)."""
    kind = pred.get("type")
    if kind == "token_set":
        toks = [repr(t) for t in pred.get("tokens", [])[:8]]
        more = "" if len(pred.get("tokens", [])) <= 8 else f" (+{len(pred['tokens']) - 8} more)"
        out = f"the token is one of {', '.join(toks)}{more}"
        weak = pred.get("weak", [])
        if weak:
            extra = "" if len(weak) <= 8 else f" (+{len(weak) - 8} more)"
            out += f" (more weakly: {', '.join(repr(t) for t in weak[:8])}{extra})"
        return out
    if kind == "regex":
        return f"the token matches /{pred['pattern']}/"
    if kind == "preceded_by":
        toks = ", ".join(repr(t) for t in pred.get("tokens", [])[:6])
        return f"one of {toks} appears within the previous {pred.get('window', 3)} tokens"
    if kind == "structural":
        return {
            "capitalized": "the token is capitalised",
            "all_caps": "the token is in capitals",
            "digit": "the token contains a digit",
            "punctuation": "the token is punctuation",
            "quote": "the token is or contains a quotation mark",
            "newline": "the token contains a line break",
            "word_start": "the token starts a new word",
            "word_continuation": "the token continues a word",
        }[pred["property"]]
    if kind == "and":
        return " and ".join(describe(p) for p in pred["all"])
    if kind == "or":
        return " or ".join(describe(p) for p in pred["any"])
    if kind == "not":
        return f"not ({describe(pred['arg'])})"
    return str(pred)
