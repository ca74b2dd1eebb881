"""Output-side hypotheses ("the feature promotes / suppresses these tokens"), their experiments and verdicts.

The MI words (arXiv 2502.15576) and the logit lens describe what a feature's decoder direction does
to the model's output. Here each list becomes a testable hypothesis:

- O1 promotes the top MI words; O2 promotes the top logit-lens tokens; O3 suppresses the bottom
  logit-lens tokens (the direction's most negative unembedding products).

Two experiments test every hypothesis (`sage.intervention.effects` measures both):

1. **amplify** the feature (`EFFECTS.strategy`, `EFFECTS.strength` x its max activation) on the
   neutral prompts: the rise of the listed tokens over matched controls must reach `min_rise`
   (promotes) or fall to `-min_rise` (suppresses);
2. **ablate** it (clamp its code to 0, the reconstruction error kept) on its own strongest contexts,
   cut right after the token where it peaks: the listed tokens must move the other way (a negative
   rise for promotes, a positive one for suppresses), i.e. the feature's natural activation was
   pushing them.

A hypothesis is confirmed when both come out as predicted, refuted when the amplification does not,
and stays open when only the amplification does (the loop's two-consistent-tests rule). Per token,
the section an explanation carries lists every measured token whose own rise under amplification
passes `min_rise` either way, with its shift and its controls' shift: each number is re-measurable with
`sage steer --feature N --strategy amplify --strength S --prompt P ... --measure TOKENS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.intervention.edits import GenerationConfig, SteerSpec
from sage.intervention.effects import (
    EFFECTS,
    EffectConfig,
    continuation,
    feature_spec,
    next_logprobs,
    shifts_from,
)

#: (id, direction, source) of the output hypotheses, in order
OUTPUT_HYPOTHESES = (
    ("O1", "promotes", "mi"),
    ("O2", "promotes", "logitlens"),
    ("O3", "suppresses", "logitlens_bottom"),
)
_SOURCE_TEXT = {
    "mi": "its top mutual-information words",
    "logitlens": "its top logit-lens tokens",
    "logitlens_bottom": "its bottom logit-lens tokens",
}


def output_hypotheses(candidates: dict[str, list[str]]) -> list[dict]:
    """The output hypotheses of a feature from its candidate lists (source -> texts; see
    OUTPUT_HYPOTHESES). A source with no texts gives no hypothesis."""
    out = []
    for hid, direction, source in OUTPUT_HYPOTHESES:
        texts = candidates.get(source) or []
        if texts:
            shown = ", ".join(repr(t) for t in texts[:6])
            out.append(
                {
                    "id": hid,
                    "direction": direction,
                    "source": source,
                    "tokens": list(texts),
                    "words": source == "mi",
                    "text": f"{direction} {_SOURCE_TEXT[source]}: {shown}",
                    "status": "open",
                    "amplify_rise": None,
                    "ablate_rise": None,
                    "note": "",
                }
            )
    return out


def own_prompts(contexts: Sequence[dict], n: int, skip: int) -> list[str]:
    """The feature's strongest contexts, each cut right after its peak token (sink removed): where the
    feature's own activation writes into the next-token prediction. contexts: seed contexts
    ({"tokens", "acts"}), strongest first."""
    out = []
    for c in contexts:
        acts = c["acts"][skip:]
        if not acts or max(acts) <= 0:
            continue
        peak = skip + max(range(len(acts)), key=acts.__getitem__)
        text = "".join(c["tokens"][skip : peak + 1])
        if text.strip() and text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


def ablation_spec(feature: int, max_act: float) -> SteerSpec:
    """Clamp the feature's code to 0 at every position after the sink (the error term kept)."""
    return SteerSpec((int(feature),), "clamp", 0.0, (float(max_act),), "all")


def run_experiments(
    subject,
    feature: int,
    max_act: float,
    hyps: list[dict],
    own: Sequence[str],
    settings: EffectConfig = EFFECTS,
    n_continuations: int = 2,
) -> dict:
    """Both experiments for every hypothesis, and steered / unsteered continuations of the first
    `n_continuations` neutral prompts (the steering module's seed and sampling). Returns
    {"amplify": {id: OutputEffect dict}, "ablate": {id: OutputEffect dict}, "continuations": [...],
    "forwards": number of prompt texts run}."""
    amp_spec = feature_spec(feature, max_act, settings)
    neutral = settings.prompts
    base, steered = next_logprobs(subject, neutral), next_logprobs(subject, neutral, amp_spec)
    res: dict = {"amplify": {}, "ablate": {}, "continuations": [], "own_prompts": list(own)}
    if own:
        abl_spec = ablation_spec(feature, max_act)
        own_base, own_abl = next_logprobs(subject, own), next_logprobs(subject, own, abl_spec)
    for h in hyps:
        kw = {"words": h["words"], "settings": settings}
        res["amplify"][h["id"]] = shifts_from(
            subject, base, steered, amp_spec, neutral, h["tokens"], **kw
        ).to_dict()
        if own:
            res["ablate"][h["id"]] = shifts_from(
                subject, own_base, own_abl, abl_spec, own, h["tokens"], **kw
            ).to_dict()
    gen = GenerationConfig(max_new_tokens=settings.continuation_tokens)
    for prompt in neutral[:n_continuations]:
        res["continuations"].append(
            {
                "prompt": prompt,
                "unsteered": continuation(subject, prompt, gen),
                "steered": continuation(subject, prompt, gen, amp_spec),
                "seed": gen.seed,
                "temperature": gen.temperature,
                "top_p": gen.top_p,
                "max_new_tokens": gen.max_new_tokens,
            }
        )
    res["forwards"] = 2 * len(neutral) + 2 * len(own) + 2 * len(res["continuations"])
    return res


def judge(h: dict, amplify: dict | None, ablate: dict | None, settings: EffectConfig = EFFECTS) -> dict:
    """The hypothesis after its experiments (status, the two rises, a note citing them)."""
    h = dict(h)
    sign = 1.0 if h["direction"] == "promotes" else -1.0
    amp = None if amplify is None else amplify["rise"]
    abl = None if ablate is None else ablate["rise"]
    h["amplify_rise"], h["ablate_rise"] = amp, abl
    amp_ok = amp is not None and sign * amp >= settings.min_rise
    abl_ok = abl is not None and sign * abl < 0
    said = (
        f"amplifying x{settings.strength:g} moves them {_nats(amp)} vs matched controls"
        f"; ablating on its own contexts {_nats(abl)}"
    )
    if amp is None:
        h["status"], h["note"] = "open", "no token of the list could be measured"
    elif not amp_ok:
        h["status"], h["note"] = "refuted", f"{said} (needed {sign * settings.min_rise:+.2f} from amplifying)"
    elif abl_ok:
        h["status"], h["note"] = "confirmed", said
    else:
        h["status"], h["note"] = "open", f"{said} (the ablation does not move them the other way)"
    return h


def output_hypothesis_line(h: dict) -> str:
    """One line for an explainer: the hypothesis, its status and its measured rises."""
    return (
        f"- {h['id']} [{h['status']}] {h['text']}; amplified: {_nats(h['amplify_rise'])}, "
        f"ablated on its own contexts: {_nats(h['ablate_rise'])} (vs matched controls)"
    )


def _nats(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.2f} nats"


def output_section(hyps: list[dict], results: dict, settings: EffectConfig = EFFECTS) -> dict:
    """The Explanation's `output` section (prompts/schemas/explanation.json) from judged hypotheses
    and their experiments."""
    tokens: dict[int, dict] = {}
    for h in hyps:
        for t in (results["amplify"].get(h["id"]) or {}).get("tokens", []):
            if t["control_shift"] is not None:
                tokens.setdefault(
                    t["token"], {**t, "rise": round(t["logprob_shift"] - t["control_shift"], 4)}
                )
    ranked = sorted(tokens.values(), key=lambda t: -t["rise"])
    amp = next(iter(results["amplify"].values()), None)
    return {
        "strategy": settings.strategy,
        "strength": settings.strength,
        "max_activation": None if amp is None else amp["max_activation"],
        "prompts": list(settings.prompts),
        "ablation_prompts": list(results.get("own_prompts", [])),
        "min_rise": settings.min_rise,
        "promoted": [t for t in ranked if t["rise"] >= settings.min_rise],
        "suppressed": [t for t in reversed(ranked) if t["rise"] <= -settings.min_rise],
        "hypotheses": [
            {
                k: h[k]
                for k in (
                    "id",
                    "direction",
                    "source",
                    "text",
                    "status",
                    "amplify_rise",
                    "ablate_rise",
                    "note",
                )
            }
            for h in hyps
        ],
        "continuations": results["continuations"],
    }


def output_summary(section: dict | None, limit: int = 8) -> str:
    """One line an explainer or a scorer reads: what the feature does to the output, as measured."""
    if not section:
        return "(not measured)"

    def shown(rows: list[dict]) -> str:
        return ", ".join(f"{t['token_text']!r} ({t['rise']:+.1f})" for t in rows[:limit]) or "none"

    up, down = shown(section["promoted"]), shown(section["suppressed"])
    return (
        f"amplifying it (x{section['strength']:g} max activation) raises {up}; lowers {down} "
        "(log-prob change in nats vs matched control tokens)"
    )
