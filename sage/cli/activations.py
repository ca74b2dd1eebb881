"""`sage activations`: per-token activations of a feature on a text."""

from __future__ import annotations

from sage.cli.common import add_subject_args, print_json, subject_from


def add_parser(sub) -> None:
    p = sub.add_parser("activations", help="per-token activations of a feature on your text")
    p.add_argument("--feature", type=int, required=True)
    p.add_argument("--text", required=True)
    add_subject_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.subject:  # Neuronpedia's activation endpoint: no store to mine
        from sage.neuronpedia.source import open_source

        engine = open_source(args.subject).engine
        subject = engine.subject
    else:
        from sage.model.engine import ActivationEngine

        subject = subject_from(args)
        engine = ActivationEngine(subject)
    subject.check_feature(args.feature)
    ta = engine.run([args.text], [args.feature])[0]
    out = {"feature": args.feature, "hook_name": subject.info()["hook_name"], **ta.to_dict(args.feature)}
    if args.json:
        print_json(out)
        return 0
    for i, (t, a) in enumerate(zip(out["tokens"], out["activations"])):
        note = "  (sink, not counted)" if i in out["sink_positions"] else ""
        print(f"{i:>4} {t!r:>20} {a:9.4f} {'#' * min(40, int(a * 10))}{note}")
    return 0
