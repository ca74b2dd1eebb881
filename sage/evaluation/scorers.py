"""Scorers: what reads an explanation and answers the evaluation's questions.

A scorer never sees activations; it gets the explanation and texts, and answers:
- `generate`: texts meant to make the feature fire (generative accuracy);
- `predict`: per-token activations of held-out contexts (predictive accuracy);
- `detect`: does a context make the feature fire (delphi detection);
- `fuzz`: are a context's highlighted tokens where it fires (delphi fuzzing);
- `simulate`: expected 0-10 activation per token from digit log-probs (OpenAI simulation);
- `pick_steered`: which of two continuations was generated with the feature amplified (the
  intervention score, sage/evaluation/intervention.py).

`offline` answers from the explanation's machine-checkable predicate. It writes no text: for
`generate` it retrieves corpus contexts where the predicate holds (never ones the explainer saw
or the scoring data), so its number is reported as `retrieval_accuracy`, never as generative
accuracy (`generates_text` is False). LLM scorers (`openai:`, `anthropic:`,
`openai-compatible:`, `hf:`) answer from the explanation's labels and description,
through the same backends as the explainer. A question a scorer cannot answer
for this explanation raises `NotComputable` (the explanation then scores the metric's floor);
one it cannot answer for any explanation raises `Unsupported` (the metric is left out for every
method).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import prompts
from sage.errors import require_ints, require_range
from sage.evaluation.data import FuzzItem, HeldOut, body_tokens, highlight
from sage.evaluation.metrics import SIMULATION_MAX, digit_expected_value
from sage.hypotheses.predicates import body_mask, norm_token, predicate_mask, predicate_values, strong_part
from sage.intervention.output import output_summary
from sage.llm import make_backend
from sage.llm.base import LLMRequest
from sage.model.engine_config import ENGINE


class NotComputable(Exception):
    """This explanation gives the scorer nothing to compute the metric from (the message says why):
    the explanation's failure, scored at the metric's floor."""


class Unsupported(Exception):
    """This scorer cannot compute this metric for any explanation (e.g. simulation without log-probs)."""


@dataclass(frozen=True)
class ScorerConfig:
    #: texts asked for per explanation (generative accuracy)
    n_sentences: int = 10
    #: offline retrieval: corpus contexts examined per explanation, and the window kept around a match
    candidate_pool: int = 30
    #: tokens kept before the matching token of a retrieved snippet
    snippet_before: int = 24
    #: tokens kept after it
    snippet_after: int = 4
    #: offline fuzzing: the marks are judged correct when the predicate holds on at least this share of them
    fuzz_share: float = 0.5
    #: log-probs read per generated position (simulation)
    top_logprobs: int = 20

    def __post_init__(self) -> None:
        require_ints(self, "n_sentences", "candidate_pool", "top_logprobs")
        require_ints(self, "snippet_before", "snippet_after", minimum=0)
        require_range(self, "fuzz_share", 0, 1, open_low=True)


SCORER = ScorerConfig()


def explanation_text(expl: dict) -> str:
    """What an LLM scorer is told: the labels and the description, never the evidence or activations."""
    return f"{' | '.join(expl['labels'])}\n{expl['description']}"


def token_lines(tokens: Sequence[str]) -> str:
    return "\n".join(f"{i}\t{json.dumps(t, ensure_ascii=False)}" for i, t in enumerate(tokens))


class Scorer(ABC):
    name: str = "scorer"
    settings: ScorerConfig = SCORER
    #: True when `generate` writes new text (generative accuracy); False when it retrieves it
    generates_text: bool = True
    #: what produced the numbers, as the report states it
    kind: str = "scorer"

    def usage(self) -> dict:
        """Tokens and USD spent so far by this scorer (zeros for offline)."""
        return {"input_tokens": 0, "output_tokens": 0, "usd": 0.0}

    @abstractmethod
    def generate(self, expl: dict, held: HeldOut, n: int) -> list[str]: ...

    @abstractmethod
    def predict(self, expl: dict, contexts: Sequence) -> list[list[float]]:
        """Predicted activation of every body token (sink excluded) of each context, in any one unit."""

    @abstractmethod
    def detect(self, expl: dict, contexts: Sequence) -> list[bool]: ...

    @abstractmethod
    def fuzz(self, expl: dict, items: Sequence[FuzzItem]) -> list[bool]: ...

    @abstractmethod
    def simulate(self, expl: dict, contexts: Sequence) -> list[list[float]]:
        """Expected 0-10 activation of every body token of each context."""

    def pick_steered(self, expl: dict, pairs: Sequence) -> list[int | None]:  # noqa: ARG002
        """For each `SteeredPair`, the index (0 or 1) of the continuation the scorer thinks was steered,
        or None when it cannot tell."""
        raise Unsupported(f"the {self.name} scorer cannot judge steered continuations")


# -- offline ----------------------------------------------------------------------------------------
class OfflineScorer(Scorer):
    """Scores with the explanation's predicate (sage/predicates.py): no LLM, deterministic."""

    name = "offline"
    generates_text = False
    kind = "offline: the explanation's predicate; corpus retrieval for the generative group"

    def __init__(self, store, settings: ScorerConfig = SCORER):
        self.store, self.settings = store, settings
        self._vocab: list[str] | None = None

    @staticmethod
    def _predicate(expl: dict) -> dict:
        pred = expl.get("predicate")
        if not pred:
            raise NotComputable(
                "the explanation has no machine-checkable predicate (the offline scorer needs one)"
            )
        return pred

    def _masks(self, expl: dict, contexts: Sequence) -> list[list[bool]]:
        pred = self._predicate(expl)
        skip = ENGINE.skip_positions
        return [predicate_mask(pred, c.tokens)[skip:] for c in contexts]

    def predict(self, expl, contexts):
        """1 where the predicate holds, `WEAK_VALUE` where it holds only on tokens it names as weak."""
        pred = self._predicate(expl)
        skip = ENGINE.skip_positions
        return [predicate_values(pred, c.tokens)[skip:] for c in contexts]

    def detect(self, expl, contexts):
        return [any(mask) for mask in self._masks(expl, contexts)]

    def fuzz(self, expl, items):
        pred = self._predicate(expl)
        out = []
        for it in items:
            mask = body_mask(pred, it.tokens)
            hits = sum(mask[i] for i in it.highlighted)
            out.append(bool(it.highlighted) and hits / len(it.highlighted) >= self.settings.fuzz_share)
        return out

    def pick_steered(self, expl, pairs):
        """The continuation holding more tokens the explanation names (`explanation_words`); a tie is
        "cannot tell". Tokens are the subject's, normalised as the predicates normalise them."""
        words = explanation_words(expl)
        if not words:
            raise NotComputable("the explanation names no word or token to look for in a continuation")
        tok = self.store.subject.tokenizer

        def hits(text: str) -> int:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            return sum(norm_token(tok.decode([i]), False) in words for i in ids)

        out = []
        for p in pairs:
            a, b = hits(p.texts[0]), hits(p.texts[1])
            out.append(None if a == b else int(b > a))
        return out

    def simulate(self, expl, contexts):  # noqa: ARG002  (Scorer interface)
        raise Unsupported(
            "the offline scorer has no token log-probabilities (simulation needs an LLM scorer "
            "that returns them: openai:, openai-compatible: or hf:)"
        )

    # -- generation by corpus retrieval -----------------------------------------------------------
    def vocabulary(self) -> list[str]:
        """Every token id of the subject's tokenizer, decoded the way contexts are."""
        if self._vocab is None:
            tok = self.store.subject.tokenizer
            self._vocab = [tok.decode([i]) for i in range(len(tok))]
        return self._vocab

    def trigger_ids(self, pred: dict) -> set[int] | None:
        """Token ids of which a context must contain one for `pred` to hold anywhere in it (None: no such
        necessary condition, e.g. a negation)."""
        kind = pred.get("type")
        vocab = self.vocabulary()
        if kind in ("token_set", "regex", "structural"):  # token-local: test every vocabulary entry at once
            return {i for i, hit in enumerate(body_mask(pred, vocab)) if hit}
        if kind == "preceded_by":
            cs = bool(pred.get("case_sensitive", False))
            wanted = {norm_token(t, cs) for t in pred["tokens"]}
            return {i for i, t in enumerate(vocab) if norm_token(t, cs) in wanted and norm_token(t, cs)}
        if kind == "and":  # every part is necessary: the most selective one will do
            parts = [s for s in (self.trigger_ids(p) for p in pred["all"]) if s is not None]
            return min(parts, key=len) if parts else None
        if kind == "or":
            parts = [self.trigger_ids(p) for p in pred["any"]]
            return None if any(p is None for p in parts) else set().union(*parts)
        return None

    def generate(self, expl, held, n):  # noqa: ARG002  (Scorer interface)
        """Up to `n` corpus snippets where the predicate's strong tier holds (`strong_part`: a token
        set's `weak` tokens are left out, as a reader asked for text on which the feature fires would
        leave out what the explanation calls weak): each cut from a context (never one the explainer
        saw or the scoring data) around its first matching token."""
        pred = strong_part(self._predicate(expl))
        s = self.settings
        ids = self.trigger_ids(pred)
        if ids is None:
            ids = set(range(len(self.vocabulary())))
        if not ids:
            raise NotComputable("the predicate matches no token of the vocabulary")
        found = self.store.search(
            sorted(ids), limit=s.candidate_pool, exclude=sorted(held.excluded_ids), seed=held.settings.seed
        )
        texts = []
        skip = ENGINE.skip_positions
        # token strings only: the predicate decides, the snippets' activations are read later
        for toks in self.store.context_tokens(found) if found else []:
            toks = toks[skip:]
            if "".join(toks) in held.exclude_texts:
                continue
            mask = body_mask(pred, toks)
            if not any(mask):
                continue
            p = mask.index(True)
            snippet = "".join(
                toks[_word_start(toks, max(0, p - s.snippet_before), p) : p + 1 + s.snippet_after]
            )
            if snippet.strip() and snippet not in texts:
                texts.append(snippet)
            if len(texts) == n:
                break
        if not texts:
            raise NotComputable("no held-out corpus context matches the predicate")
        return texts


def explanation_words(expl: dict) -> set[str]:
    """The words or tokens an explanation says steering the feature brings out, normalised (stripped,
    lower-case). One rule for every method: what the explanation claims about the output when it makes
    a claim (its output section's promoted tokens; none when it measured none), else every word it
    names (its predicate's tokens and the quoted words of its labels), which is all a reader has."""
    out: set[str] = set()
    if expl.get("output"):
        for t in expl["output"].get("promoted", []):
            out |= {norm_token(t["token_text"], False), norm_token(t["text"], False)}
        return {w for w in out if w}

    def walk(pred) -> None:
        if isinstance(pred, dict):
            out.update(norm_token(t, False) for t in pred.get("tokens", []))
            for part in (*pred.get("all", []), *pred.get("any", [])):  # a negation names what it is not
                walk(part)

    walk(expl.get("predicate"))
    for label in expl.get("labels", []):
        out.update(norm_token(w, False) for w in re.findall(r"'([^']+)'", label))
    return {w for w in out if w}


def _word_start(tokens: Sequence[str], lo: int, hi: int) -> int:
    """The first position in [lo, hi] that starts a word (so a snippet does not open mid-word), else lo."""
    for i in range(lo, hi + 1):
        if tokens[i][:1].isspace() or (i > 0 and tokens[i - 1].endswith("\n")):
            return i
    return lo


# -- LLM --------------------------------------------------------------------------------------------
class LLMScorer(Scorer):
    """Scores with an LLM backend (sage.llm): answers checked against prompts/schemas/eval_*.json."""

    def __init__(self, backend, settings: ScorerConfig = SCORER):
        self.backend, self.settings = backend, settings
        self.name = backend.name
        self.kind = f"LLM ({backend.name}): reads the labels and description; writes text"

    def usage(self) -> dict:
        u = self.backend.total_usage
        return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "usd": round(u.usd, 6)}

    def _messages(self, template: str, **fields) -> list[dict]:
        return [
            {"role": "system", "content": prompts.template("eval_system")},
            {"role": "user", "content": prompts.template(template).format(**fields)},
        ]

    def _ask(self, task: str, fields: dict, max_tokens: int = 512) -> dict:

        req = LLMRequest(
            task=task, messages=self._messages(task, **fields), schema_name=task, max_tokens=max_tokens
        )
        return self.backend.complete(req).data

    def generate(self, expl, held, n):  # noqa: ARG002  (Scorer interface)
        data = self._ask("eval_generate", {"explanation": explanation_text(expl), "n": n}, max_tokens=120 * n)
        return [s for s in data["sentences"] if s.strip()][:n]

    def predict(self, expl, contexts):
        out = []
        for c in contexts:
            toks = body_tokens(c)
            data = self._ask(
                "eval_predict",
                {"explanation": explanation_text(expl), "tokens": token_lines(toks)},
                max_tokens=16 * len(toks) + 64,
            )
            pred = [0.0] * len(toks)
            for item in data["activations"]:
                if item["index"] < len(toks):  # an index past the text is the scorer's mistake: ignored
                    pred[item["index"]] = float(item["activation"])
            out.append(pred)
        return out

    def detect(self, expl, contexts):
        return [
            bool(
                self._ask(
                    "eval_detect",
                    {"explanation": explanation_text(expl), "text": "".join(body_tokens(c))},
                    32,
                )["activates"]
            )
            for c in contexts
        ]

    def fuzz(self, expl, items):
        return [
            bool(
                self._ask("eval_fuzz", {"explanation": explanation_text(expl), "text": highlight(it)}, 32)[
                    "correctly_marked"
                ]
            )
            for it in items
        ]

    def pick_steered(self, expl, pairs):
        text = explanation_text(expl)
        if expl.get("output"):
            text += f"\nOutput side (measured): {output_summary(expl['output'])}"
        picks = []
        for p in pairs:
            data = self._ask(
                "eval_intervention",
                {"explanation": text, "prompt": p.prompt, "a": p.texts[0], "b": p.texts[1]},
                32,
            )
            picks.append({"A": 0, "B": 1}.get(data["steered"]))
        return picks

    def simulate(self, expl, contexts):
        out = []
        for c in contexts:
            toks = body_tokens(c)
            messages = self._messages(
                "eval_simulate", explanation=explanation_text(expl), tokens=token_lines(toks), n=len(toks)
            )
            try:
                positions = self.backend.top_logprobs(
                    messages, n=self.settings.top_logprobs, max_tokens=3 * len(toks) + 8
                )
            except NotImplementedError as exc:
                raise Unsupported(str(exc)) from exc
            values = simulated_values(positions, len(toks))
            if values is None:
                raise NotComputable(f"{self.name} did not write one number per token")
            out.append(values)
        return out


def simulated_values(positions: Sequence[dict[str, float]], n: int) -> list[float] | None:
    """Expected activation of each of `n` tokens from a simulator's generated positions.

    positions: top log-probs per generated position (greedy decoding, so the most likely token
    is the one written). Each number the simulator starts writing gives one value: the expected
    value of the digit distribution at its first position. None unless `n` numbers were written.
    """
    values: list[float] = []
    prev = ""
    for pos in positions:
        if not pos:
            continue
        written = max(pos, key=pos.get)
        starts_number = written.strip().isdigit() and not prev.strip()[-1:].isdigit()
        if starts_number and len(values) < n:
            ev = digit_expected_value(pos, SIMULATION_MAX)
            if ev is None:
                return None
            values.append(ev)
        # a newline or space between numbers ends the previous one
        prev = written if not (written.strip() == "" or "\n" in written) else ""
    return values if len(values) == n else None


def make_scorer(spec: str, store) -> Scorer:
    """`offline` (the predicate), or an LLM backend spec (see sage.llm.make_backend)."""
    if spec.strip() == "offline":
        return OfflineScorer(store)

    return LLMScorer(make_backend(spec))
