"""Output effects of a feature: how an edit of the feature moves the model's next-token log-probabilities
of given words, against matched control words.

This is what an output-side explanation ("promotes court, market, share") predicts and what can
refute it. The measurement, for prompts P (each starting with the sink token), target tokens T and
control tokens C(t) (one set per target):

    shift(t) = mean over p in P of  log p_steered(t | p) - log p(t | p)      (nats)
    rise     = mean over t in T of  shift(t)  -  mean over t in T, c in C(t) of  shift(c)

read at each prompt's last position, with the edit applied at every position after the sink (the
`all` positions of `sage steer`). Log-probabilities are deterministic: `sage steer --feature N
--strategy S --strength X --max-act M --prompt P ... --measure-ids IDS` re-measures every shift of an
explanation's output section, and its controls' shifts.

Targets. A word stands for the first token of " word" (how it starts mid-sentence); a logit-lens
token is itself. Controls. For each target, `n_controls` tokens with the same leading-space form,
alphabetic, of the same length in characters (+-1) and within `id_window` ids of it (BPE ids grow
as merges get rarer, so a nearby id is a token of similar corpus frequency), never the target
itself, drawn with a seed fixed per target (so a control may, rarely, be another listed target).
Matching matters: frequent short tokens move differently from rare long ones under any edit that
shifts the residual stream, so an unmatched random baseline would credit the target list with a
generic effect.
"""

from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sage.errors import require_choice, require_ints, require_range
from sage.intervention import math as sm
from sage.intervention.edits import (
    STRATEGIES,
    FeatureEditor,
    GenerationConfig,
    PositionalEdit,
    SteerSpec,
    generate_ids,
    prompt_ids,
    residual_hook,
)
from sage.model.engine import ActivationEngine
from sage.model.subject import Subject

#: Neutral prompts: no topic of their own, so a feature's push on the next token shows.
#: The first is the dTC / output-score prefix (technion-cs-nlp/saes-are-good-for-steering).
NEUTRAL_PROMPTS = (
    "From my experience,",
    "I think that the",
    "Here is a short story about",
    "The most important thing is",
    "She looked at the",
)


@dataclass(frozen=True)
class EffectConfig:
    """Defaults of the output-effect measurement (the loop's output probes, the benchmark, `sage steer`)."""

    #: the edit; amplify is the MI paper's strategy (autoencoder.py, `edit_generate`)
    strategy: str = "amplify"
    #: edit size in multiples of the feature's max activation (the steering convention)
    strength: float = 8.0
    #: prompts the shifts are averaged over
    prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    #: control tokens per target token
    n_controls: int = 3
    #: how far (in token ids) a control may sit from its target
    id_window: int = 2000
    #: seed of the control draw
    seed: int = 0
    #: nats: a rise (targets minus controls) at least this large confirms "promotes", at most minus
    #: this confirms "suppresses"; in between the hypothesis is refuted (no output effect)
    min_rise: float = 0.5
    #: tokens generated per steered continuation shown in an explanation
    continuation_tokens: int = 20

    def __post_init__(self) -> None:
        require_choice(self, "strategy", STRATEGIES)
        require_range(self, "strength", 0, open_low=True)
        require_ints(self, "n_controls", "id_window", "continuation_tokens")
        require_ints(self, "seed", minimum=0)
        require_range(self, "min_rise", 0, open_low=True)


EFFECTS = EffectConfig()


# -- tokens ----------------------------------------------------------------------------------------
def token_texts(subject: Subject) -> list[str]:
    """Decoded text of every token id (the subject's `token_strings`, decoded once in bulk)."""
    return subject.token_strings(range(len(subject.tokenizer)))


def target_id(tokenizer, text: str, *, word: bool) -> int | None:
    """The token a word (first token of " word") or a token text (its own id) stands for; None when a
    token text is not a single token."""
    if word:
        ids = tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"]
        return ids[0] if ids else None
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def _shape(text: str) -> tuple[bool, int] | None:
    core = text.strip()
    if not core.isalpha():
        return None
    return text[:1].isspace(), len(core)


def control_ids(
    subject: Subject,
    targets: Sequence[int],
    n: int = EFFECTS.n_controls,
    window: int = EFFECTS.id_window,
    seed: int = EFFECTS.seed,
) -> list[list[int]]:
    """`n` matched control tokens per target (see the module docstring); fewer when too few match.

    Each target's draw depends on that target and `seed` alone (not on the other targets), so a token's
    control shift re-measures exactly whatever list it is measured in (`sage steer --measure-ids`)."""
    texts = token_texts(subject)
    out = []
    for t in targets:
        taken = {t}
        rng = random.Random(f"{seed}:{t}")
        shape = _shape(texts[t])
        lo, hi = max(0, t - window), min(len(texts), t + window + 1)
        pool = []
        for i in range(lo, hi):
            s = _shape(texts[i]) if i not in taken else None
            if s is not None and shape is not None and s[0] == shape[0] and abs(s[1] - shape[1]) <= 1:
                pool.append(i)
        if shape is None:  # a target that is not a word piece: any alphabetic neighbour of its form
            pool = [i for i in range(lo, hi) if i not in taken and _shape(texts[i]) is not None]
        out.append(rng.sample(pool, min(n, len(pool))))
    return out


# -- measurement -----------------------------------------------------------------------------------
#: unedited results per subject object, reused by every feature of a process (they do not depend on it)
_UNEDITED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unedited(subject: Subject) -> dict:
    return _UNEDITED.setdefault(subject, {})


@torch.no_grad()
def next_logprobs(subject: Subject, prompts: Sequence[str], spec: SteerSpec | None = None) -> torch.Tensor:
    """[P, V] float32 next-token log-probabilities at the last position of each prompt (sink prepended),
    with `spec`'s edit applied at every position after the sink (all prompts in one padded batch).
    Without an edit the answer is remembered per subject and prompts."""
    if spec is None:
        memo, key = _unedited(subject), ("logprobs", tuple(prompts))
        if key not in memo:
            memo[key] = _next_logprobs(subject, prompts, None)
        return memo[key]
    return _next_logprobs(subject, prompts, spec)


def continuation(subject: Subject, prompt: str, gen: GenerationConfig, spec: SteerSpec | None = None) -> str:
    """The text `generate_ids` continues `prompt` with (steered by `spec` when given); without an edit it
    is remembered per subject, prompt and generation settings."""
    memo, key = _unedited(subject), ("continuation", prompt, gen)
    if spec is None and key in memo:
        return memo[key]
    new, _ = generate_ids(subject, prompt_ids(subject, prompt), gen, spec)
    text = subject.tokenizer.decode(new, skip_special_tokens=True)
    if spec is None:
        memo[key] = text
    return text


def _next_logprobs(subject: Subject, prompts: Sequence[str], spec: SteerSpec | None) -> torch.Tensor:
    engine = ActivationEngine(subject)
    seqs = engine.tokenize(list(prompts))
    ids, mask = engine.pad(seqs)
    device = next(subject.model.parameters()).device
    edit = PositionalEdit(FeatureEditor(subject.sae, spec), "all", 0) if spec is not None else None
    with residual_hook(subject, edit) if edit is not None else contextlib.nullcontext():
        out = subject.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
    rows = torch.arange(len(seqs), device=out.logits.device)
    last = torch.tensor([len(s) - 1 for s in seqs], device=out.logits.device)
    return torch.log_softmax(out.logits[rows, last].float(), dim=-1).cpu()


@dataclass(frozen=True)
class TokenShift:
    """One target's measured shift (nats, mean over prompts) and its controls' mean shift."""

    text: str
    token_id: int
    token_text: str
    shift: float
    control_shift: float | None
    controls: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "token": self.token_id,
            "token_text": self.token_text,
            "logprob_shift": round(self.shift, 4),
            "control_shift": None if self.control_shift is None else round(self.control_shift, 4),
            "controls": list(self.controls),
        }


@dataclass(frozen=True)
class OutputEffect:
    """The shifts of a list of targets under one edit, and their rise over matched controls (nats)."""

    spec: SteerSpec
    prompts: tuple[str, ...]
    targets: tuple[TokenShift, ...]
    rise: float | None

    def to_dict(self) -> dict:
        return {
            "strategy": self.spec.strategy,
            "strength": self.spec.strength,
            "max_activation": self.spec.max_acts[0],
            "prompts": list(self.prompts),
            "rise": None if self.rise is None else round(self.rise, 4),
            "tokens": [t.to_dict() for t in self.targets],
        }


def feature_spec(feature: int, max_act: float, settings: EffectConfig = EFFECTS) -> SteerSpec:
    """The edit the output measurement applies to one feature."""
    return SteerSpec((int(feature),), settings.strategy, settings.strength, (float(max_act),), "all")


def shifts_from(
    subject: Subject,
    base: torch.Tensor,
    steered: torch.Tensor,
    spec: SteerSpec,
    prompts: Sequence[str],
    texts: Sequence[str],
    *,
    words: bool,
    settings: EffectConfig = EFFECTS,
) -> OutputEffect:
    """The `OutputEffect` of `texts` (words, or token texts when `words` is False) from log-probs already
    computed: base / steered [P, V]. Texts that stand for no single token are dropped."""
    resolved = [(t, target_id(subject.tokenizer, t, word=words)) for t in texts]
    resolved = [(t, i) for t, i in resolved if i is not None]
    resolved = list({i: (t, i) for t, i in resolved}.values())  # two words on one token: measured once
    return shifts_of_ids(subject, base, steered, spec, prompts, resolved, settings)


def shifts_of_ids(
    subject: Subject,
    base: torch.Tensor,
    steered: torch.Tensor,
    spec: SteerSpec,
    prompts: Sequence[str],
    resolved: Sequence[tuple[str, int]],
    settings: EffectConfig = EFFECTS,
) -> OutputEffect:
    """`shifts_from` for (text, token id) pairs already resolved (distinct ids)."""
    ids = [i for _, i in resolved]
    controls = control_ids(subject, ids, settings.n_controls, settings.id_window, settings.seed)
    tok_text = token_texts(subject)
    shift = sm.logprob_shift(base, steered, ids)
    rows = []
    for (text, i), ctrl, s in zip(resolved, controls, shift.tolist()):
        c = sm.logprob_shift(base, steered, ctrl).mean().item() if ctrl else None
        rows.append(TokenShift(text, i, tok_text[i], s, c, tuple(tok_text[j] for j in ctrl)))
    rise = sm.rise_over_controls([r.shift for r in rows], [r.control_shift for r in rows])
    return OutputEffect(spec, tuple(prompts), tuple(rows), rise)


def measure_effect(
    subject: Subject,
    feature: int,
    max_act: float,
    texts: Sequence[str],
    *,
    words: bool,
    prompts: Sequence[str] | None = None,
    settings: EffectConfig = EFFECTS,
) -> OutputEffect:
    """Amplify (per `settings`) `feature` on `prompts` and measure the shifts of `texts` (see the module
    docstring). Two batched forwards: unedited and edited."""
    prompts = tuple(prompts or settings.prompts)
    spec = feature_spec(feature, max_act, settings)
    base = next_logprobs(subject, prompts)
    steered = next_logprobs(subject, prompts, spec)
    return shifts_from(subject, base, steered, spec, prompts, texts, words=words, settings=settings)
