"""`sage steer`: generate with and without steering SAE features, side by side, with the measured effect."""

from __future__ import annotations

import argparse
import itertools
import shutil
import textwrap

from sage.cli.common import add_corpus_arg, add_subject_args, print_json, subject_from
from sage.errors import ConfigError
from sage.intervention.edits import POSITIONS, STEER, STRATEGIES, GenerationConfig, SteerSpec


def add_parser(sub) -> None:
    p = sub.add_parser(
        "steer",
        help="steer generation with SAE features",
        description="Generate from --prompt unsteered and steered (same seed) and report the "
        "steered features' mean activation on the generated tokens and the "
        "perplexity of the generated text under the unsteered model.",
    )
    add_subject_args(p)
    add_corpus_arg(p)
    p.add_argument("--feature", type=int, action="append", default=[], help="feature to steer (repeatable)")
    p.add_argument(
        "--concept", help="select the features to steer by explanation (needs --results or --vocab)"
    )
    p.add_argument("--results", help="`sage batch` results JSONL to match --concept against")
    p.add_argument("--vocab", action="store_true", help="match --concept against MI vocabulary words too")
    p.add_argument(
        "--n-features", type=int, default=1, help="with --concept: steer the best N matches (default 1)"
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="add", help="edit to apply (default add)")
    p.add_argument(
        "--strength",
        type=float,
        help="edit size relative to each feature's max activation (required unless --sweep)",
    )
    p.add_argument(
        "--sweep", action="store_true", help="try a grid of strengths and print the effect of each"
    )
    p.add_argument(
        "--strengths",
        default=",".join(f"{s:g}" for s in STEER.sweep_strengths),
        help="with --sweep: comma-separated strengths (default %(default)s)",
    )
    p.add_argument(
        "--prompt",
        action="append",
        required=True,
        help="text to continue (repeatable with --measure-ids: the shifts are averaged over the prompts)",
    )
    p.add_argument(
        "--measure-ids",
        help="comma-separated token ids: instead of generating, print the change of their next-token "
        "log-probability at the end of the prompts (mean over prompts, nats) with matched control tokens; "
        "re-measures an explanation's output section (its `token` ids, `prompts`, strategy and strength)",
    )
    p.add_argument("--max-new-tokens", type=int, default=STEER.max_new_tokens)
    p.add_argument("--seed", type=int, default=STEER.seed)
    p.add_argument(
        "--temperature", type=float, default=STEER.temperature, help="0 = greedy (default %(default)s)"
    )
    p.add_argument("--top-p", type=float, default=STEER.top_p)
    p.add_argument(
        "--positions",
        choices=POSITIONS,
        default=STEER.positions,
        help="edit all positions after the sink, or only those that predict new tokens",
    )
    p.add_argument(
        "--trigger",
        type=int,
        action="append",
        default=[],
        help="calibrate: a feature of the trigger group (repeatable; default: the steered features)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=STEER.threshold,
        help="calibrate: cond_val, the trigger group's mean positive pre-activation over a forward chunk "
        "that opens the gate (default %(default)s, the released code's)",
    )
    p.add_argument(
        "--max-act",
        type=float,
        action="append",
        default=[],
        help="max activation per --feature (one value for all, or one each); default: the "
        "activation store's FeatureStats.max_activation",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sage.intervention.edits import steer, sweep

    if args.n_features < 1:
        raise ConfigError("--n-features must be at least 1")
    if not args.sweep and args.strength is None:
        raise ConfigError("--strength is required (or use --sweep)")
    if len(args.prompt) > 1 and not args.measure_ids:
        raise ConfigError("give one --prompt to generate from (several only with --measure-ids)")
    strengths = _parse_strengths(args.strengths) if args.sweep else []
    gen = GenerationConfig(args.max_new_tokens, args.seed, args.temperature, args.top_p)
    subject = (
        subject_from(args) if args.vocab else None
    )  # MI words need it; otherwise fail fast before loading
    features, concept = _features(args, subject)
    subject = subject or subject_from(args)
    for f in (*features, *args.trigger):
        subject.check_feature(f)
    spec = SteerSpec(
        tuple(features),
        args.strategy,
        args.strength if args.strength is not None else 0.0,
        _max_acts(args, subject, features),
        args.positions,
        tuple(args.trigger),
        args.threshold,
    )
    if args.measure_ids:
        out = _measure(subject, args.prompt, spec, args.measure_ids)
    elif args.sweep:
        out = sweep(subject, args.prompt[0], spec, strengths, gen).to_dict()
    else:
        out = steer(subject, args.prompt[0], spec, gen).to_dict()
    if concept:
        out["selected_by"] = concept
    if args.json:
        print_json(out)
    elif args.measure_ids:
        _print_measure(out)
    elif args.sweep:
        _print_sweep(out)
    else:
        _print_steer(out)
    return 0


def _measure(subject, prompts: list[str], spec: SteerSpec, ids_text: str) -> dict:
    from sage.intervention.effects import next_logprobs, shifts_of_ids, token_texts

    try:
        ids = list(dict.fromkeys(int(t) for t in ids_text.split(",") if t.strip()))
    except ValueError as exc:
        raise ConfigError(f"--measure-ids must be comma-separated token ids, not {ids_text!r}") from exc
    texts = token_texts(subject)
    bad = [i for i in ids if not 0 <= i < len(texts)]
    if bad or not ids:
        last = len(texts) - 1
        raise ConfigError(f"--measure-ids: {bad or ids_text!r}: not token ids of this model (0-{last})")
    base, steered = next_logprobs(subject, prompts), next_logprobs(subject, prompts, spec)
    eff = shifts_of_ids(subject, base, steered, spec, prompts, [(texts[i], i) for i in ids])
    return {**eff.to_dict(), "features": list(spec.features), "positions": "all"}


def _print_measure(out: dict) -> None:
    print(
        f"features {out['features']}: {out['strategy']} strength {out['strength']:g}, "
        f"{len(out['prompts'])} prompt(s); next-token log-prob change (nats, mean over prompts)"
    )
    print(f"{'token':>8}  {'text':<16}{'shift':>9}{'controls':>10}")
    for t in out["tokens"]:
        ctrl = "n/a" if t["control_shift"] is None else f"{t['control_shift']:+.4f}"
        print(f"{t['token']:>8}  {t['token_text']!r:<16}{t['logprob_shift']:>+9.4f}{ctrl:>10}")
    if out["rise"] is not None:
        print(f"rise over matched controls: {out['rise']:+.4f}")


def _parse_strengths(text: str) -> list[float]:
    try:
        vals = [float(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"--strengths must be comma-separated numbers, not {text!r}") from exc
    if not vals:
        raise ConfigError("--strengths is empty")
    return vals


def _features(args, subject) -> tuple[list[int], dict | None]:
    """The features to steer. With --concept: those whose output section promotes the concept's words
    (what steering them should do), else those whose explanation matches it at all. With calibrate
    and no --trigger, the trigger group is the features whose input side (labels, description,
    predicate) matches the concept: steering is gated on the concept being present (args.trigger is
    filled in)."""
    if args.concept:
        if args.feature:
            raise ConfigError("give either --feature or --concept, not both")
        from sage.steering.select import select_by_concept

        kw = {"results": args.results, "subject": subject, "use_vocab": args.vocab, "top": args.n_features}
        side = "output" if args.results else "any"
        matches = select_by_concept(args.concept, side=side, **kw) if side == "output" else []
        matches = matches or select_by_concept(args.concept, **kw)
        if not matches:
            raise ConfigError(f"no explanation matches the concept {args.concept!r}")
        selected = {"concept": args.concept, "matches": [m.to_dict() for m in matches]}
        if args.strategy == "calibrate" and not args.trigger and args.results:
            triggers = select_by_concept(
                args.concept, results=args.results, top=args.n_features, side="input"
            )
            args.trigger = [m.feature for m in triggers]
            selected["triggers"] = [m.to_dict() for m in triggers]
        return [m.feature for m in matches], selected
    if not args.feature:
        raise ConfigError("say what to steer: --feature N (repeatable) or --concept TEXT --results FILE")
    return list(args.feature), None


def _max_acts(args, subject, features: list[int]) -> tuple[float, ...]:
    if args.max_act:
        if len(args.max_act) == 1:
            return tuple(args.max_act * len(features))
        if len(args.max_act) != len(features):
            raise ConfigError(f"give one --max-act for all features or one per feature ({len(features)})")
        return tuple(args.max_act)
    from sage.data.corpus import load_corpus
    from sage.intervention.edits import max_acts_from_store
    from sage.store.activation_store import ActivationStore

    store = ActivationStore(subject, load_corpus(args.corpus))
    if not store.meta():
        raise ConfigError(
            "strengths are relative to each feature's max activation, which comes from the "
            f"activation store, but the store for this model/SAE/corpus is not mined yet "
            f"({store.dir}). Run `sage mine` first, or pass --max-act VALUE"
        )
    return max_acts_from_store(store, features)


def _fmt(v, nd=3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _print_steer(out: dict) -> None:
    s, u, st = out["steering"], out["unsteered"], out["steered"]
    width = max(60, min(shutil.get_terminal_size((120, 20)).columns, 160))
    col = (width - 3) // 2
    print(f"prompt: {out['prompt']!r}")
    print(
        f"steering: features {s['features']}, {s['strategy']} strength {s['strength']:g} "
        f"(max act {', '.join(f'{m:.3g}' for m in s['max_acts'])}), positions {s['positions']}"
    )
    left = textwrap.wrap(u["text"].replace("\n", " ⏎ "), col) or [""]
    right = textwrap.wrap(st["text"].replace("\n", " ⏎ "), col) or [""]
    print(f"{'unsteered':<{col}} | steered")
    print(f"{'-' * col}-+-{'-' * col}")
    for a, b in itertools.zip_longest(left, right, fillvalue=""):
        print(f"{a:<{col}} | {b}")
    print()
    print(f"{'':<28}{'unsteered':>12}{'steered':>12}")
    for f in s["features"]:
        key = str(f)
        print(
            f"{'mean act of feature ' + key:<28}{_fmt(u['feature_mean_activation'][key]):>12}"
            f"{_fmt(st['feature_mean_activation'][key]):>12}"
        )
    print(f"{'perplexity (unsteered LM)':<28}{_fmt(u['perplexity'], 2):>12}{_fmt(st['perplexity'], 2):>12}")
    print(f"{'generated tokens':<28}{u['n_tokens']:>12}{st['n_tokens']:>12}")


def _print_sweep(out: dict) -> None:
    s, u = out["steering"], out["unsteered"]
    feats = [str(f) for f in s["features"]]
    print(
        f"prompt: {out['prompt']!r}; features {s['features']}, strategy {s['strategy']}, "
        f"positions {s['positions']}"
    )
    head = "".join(f"{'act f' + f:>12}" for f in feats)
    print(f"{'strength':>9}{head}{'perplexity':>12}  text")
    rows = [("none", u)] + [(f"{r['strength']:g}", r) for r in out["sweep"]]
    for label, r in rows:
        acts = "".join(f"{_fmt(r['feature_mean_activation'][f]):>12}" for f in feats)
        text = r["text"].replace("\n", " ⏎ ")
        print(f"{label:>9}{acts}{_fmt(r['perplexity'], 2):>12}  {text[:70]!r}")
