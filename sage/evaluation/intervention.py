"""The intervention score's data: continuations of held-out prompts with and without the feature amplified.

Output-centric evaluation (Gur-Arieh et al. 2025, "Enhancing Automated Interpretability with
Output-Centric Feature Descriptions"; EleutherAI delphi's intervention-scorer work): an explanation
is good on the output side when a reader who knows only the explanation can tell what steering the
feature does. Here: for each of `prompts` the model continues once unsteered and once with the
feature amplified (`sage.intervention.effects.EFFECTS`: the edit, strength and positions the loop's
output experiments use), with the same sampling seed, so the two texts differ only by the edit. The
scorer sees the explanation and the two continuations in a seeded random order and picks the steered
one; `intervention_accuracy` is the share picked right (a tie or "cannot tell" counts one half).

The prompts differ from the loop's neutral prompts (`EFFECTS.prompts`), so an explanation's own
continuations are never the scoring data. The pairs depend on the feature and the settings only, so
every method is scored on the same pairs; they are computed once per process and feature (and the
unsteered continuations once per process).
"""

from __future__ import annotations

import random
import weakref
from dataclasses import dataclass

from sage.errors import require_ints
from sage.intervention.edits import GenerationConfig
from sage.intervention.effects import EFFECTS, continuation, feature_spec

#: Scoring prompts: neutral openings, none of them among the loop's `EFFECTS.prompts`.
EVAL_PROMPTS = (
    "The weather today",
    "In the beginning,",
    "My favourite thing about",
    "He opened the door and",
    "The report says that",
    "When we arrived,",
)


@dataclass(frozen=True)
class InterventionConfig:
    """Defaults of the intervention score's data."""

    #: prompts continued with and without the amplification
    prompts: tuple[str, ...] = EVAL_PROMPTS
    #: tokens per continuation
    max_new_tokens: int = 20
    #: sampling seed of both continuations (the held-out data's seed, not the loop's 0)
    seed: int = 1

    def __post_init__(self) -> None:
        require_ints(self, "max_new_tokens")
        require_ints(self, "seed", minimum=0)


INTERVENTION = InterventionConfig()


@dataclass(frozen=True)
class SteeredPair:
    """Two continuations of one prompt, in the order the scorer sees them; `steered` is the index (0 or
    1) of the one generated with the feature amplified."""

    prompt: str
    texts: tuple[str, str]
    steered: int

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "texts": list(self.texts), "steered": self.steered}


#: pairs per subject object, then per feature and settings (every method of a comparison reads the same)
_PAIRS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def steered_pairs(
    subject, feature: int, max_act: float, settings: InterventionConfig = INTERVENTION
) -> list[SteeredPair]:
    """The scoring pairs of `feature` (see the module docstring); cached per subject, feature, settings."""
    memo = _PAIRS.setdefault(subject, {})
    key = (int(feature), float(max_act), settings, EFFECTS)
    if key in memo:
        return memo[key]
    spec = feature_spec(feature, max_act)
    gen = GenerationConfig(max_new_tokens=settings.max_new_tokens, seed=settings.seed)
    order = random.Random(f"{feature}:{settings.seed}")
    pairs = []
    for prompt in settings.prompts:
        texts = [continuation(subject, prompt, gen), continuation(subject, prompt, gen, spec)]
        steered = order.randrange(2)
        shown = (texts[1], texts[0]) if steered == 0 else (texts[0], texts[1])
        pairs.append(SteeredPair(prompt, shown, steered))
    memo[key] = pairs
    return pairs
