"""`sage explain`: run the agent loop on one feature, with live progress."""

from __future__ import annotations

import sys
from pathlib import Path

from sage.cli.common import EXIT_EXPLAINER_FAILED, add_corpus_arg, add_subject_args


def add_explainer_args(p) -> None:
    p.add_argument(
        "--explainer",
        default=None,
        help="offline (default, or $SAGE_EXPLAINER), openai:MODEL, anthropic:MODEL, "
        "openai-compatible:BASE_URL:MODEL, hf:MODEL",
    )
    p.add_argument("--max-rounds", type=int, default=3)
    p.add_argument("--budget-usd", type=float, default=1.0, help="hard USD budget per feature")
    p.add_argument("--max-llm-tokens", type=int, default=None, help="hard LLM-token budget per feature")


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="explain one feature by experiment")
    p.add_argument("--feature", type=int, required=True)
    add_subject_args(p)
    add_corpus_arg(p)
    add_explainer_args(p)
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument(
        "--out", type=Path, default=None, help="folder for explanation JSON and the run checkpoint"
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    p.add_argument("--html", type=Path, default=None, help="also write a one-page HTML report to this file")
    p.set_defaults(func=run)


def render(expl) -> str:
    d = expl.to_dict()
    lines = [
        f"feature {d['feature']['index']} ({d['feature']['hook_name']}, "
        f"max activation {d['feature']['max_activation']:.3f})",
        "labels: " + " | ".join(d["labels"]),
        "",
        d["description"],
        "",
        "hypotheses:",
    ]
    for h in d["hypotheses"]:
        score = "" if h.get("precision") is None else f"  P={h['precision']:.2f} R={h['recall']:.2f}"
        lines.append(f"  {h['id']} [{h['status']:>9}] ({h['kind']}, {h['role']}){score}  {h['text']}")
    lines.append("evidence (strongest first):")
    for e in sorted(d["evidence"], key=lambda e: -e["normalized"])[:10]:
        verdict = (
            "supports " + ",".join(e["supports"]) if e["supports"] else "refutes " + ",".join(e["refutes"])
        )
        where = f"on {e['max_token']!r}" if e["max_token"] is not None else "(silent)"
        lines.append(
            f'  {e["normalized"]:5.2f} {where:<17} {verdict:<14} "{e["text"][:70]}"'.replace("\n", " ")
        )
    lines += render_output(d.get("output"))
    c = d["cost"]
    lines.append(
        f"stopped: {d['stop_reason']}; rounds {d['rounds']}, probes {c['probes']}, LLM tokens "
        f"{c['input_tokens'] + c['output_tokens']}, ${c['usd']:.4f}, {d['timings']['total']:.1f}s"
    )
    return "\n".join(lines)


def render_output(o: dict | None) -> list[str]:
    """The output section as text: what amplifying the feature does to the next token, as measured."""
    if not o:
        return ["output: not measured"]
    lines = [
        f"output ({o['strategy']} x{o['strength']:g} max activation on {len(o['prompts'])} neutral prompts; "
        "log-prob change in nats, token vs its matched controls):"
    ]
    for name in ("promoted", "suppressed"):
        toks = o[name][:10]
        shown = ", ".join(
            f"{t['token_text']!r} {t['logprob_shift']:+.2f} (ctrl {t['control_shift']:+.2f})" for t in toks
        )
        lines.append(f"  {name}: {shown or 'none'}")
    for h in o["hypotheses"]:
        lines.append(f"  {h['id']} [{h['status']:>9}] {h['text']}  ({h['note']})")
    for c in o["continuations"]:
        lines.append(f"  {c['prompt']!r}")
        lines.append(f"     unsteered: {c['unsteered'][:90]!r}")
        lines.append(f"     steered:   {c['steered'][:90]!r}")
    return lines


def run(args) -> int:
    from sage.runs import Session, explain

    session = Session.open(
        args.model, args.sae, args.corpus, args.explainer, args.dtype, args.subject, device=args.device
    )
    session.subject.check_feature(args.feature)
    from sage import config

    out = args.out
    db = (out or config.runs_dir()) / "checkpoints.sqlite"
    expl = explain(
        args.feature,
        session=session,
        max_rounds=args.max_rounds,
        budget_usd=args.budget_usd,
        max_llm_tokens=args.max_llm_tokens,
        checkpoint_db=db,
        resume=args.resume,
        on_event=lambda m: print(f"[sage] {m}", file=sys.stderr),
    )
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"feature_{args.feature}.json").write_text(expl.to_json())
    if expl.failure is None or args.json or expl.data["hypotheses"]:
        print(expl.to_json() if args.json else render(expl))
    if args.html:
        from sage.cli.report import write_html

        print(f"report: {write_html(expl.to_dict(), args.html, session)}", file=sys.stderr)
    if expl.failure is not None:
        print(f"sage explain: explanation failed: {expl.failure}", file=sys.stderr)
        return EXIT_EXPLAINER_FAILED
    return 0
