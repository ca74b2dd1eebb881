"""LLM tokens per feature against rounds: SAGE's per-step summaries vs. re-sending the transcript.

Runs the real agent graph (seed -> hypothesize -> design -> probe -> analyze -> review ... ->
conclude) with a scripted explainer: a Backend that answers every task with fixed, valid JSON
(`sage.testing.answer`; one hypothesis stays open, so a run lasts exactly `max_rounds`
rounds) and counts the tokens of the messages it is sent and of its replies. The probes it
designs are really run through the subject, so the evidence lines in the prompts are real.

Next to what SAGE sent, the table shows what one growing conversation would cost, as in
SAGE's public code: call k re-sends the system prompt, every earlier prompt and reply, and its
own prompt. SAGE grows linearly with rounds (constant tokens per round); the transcript grows
quadratically (each round costs more than the one before).

    PYTHONPATH=. python benchmarks/agent_tokens.py                      # tiny fixtures, ~1 min
    PYTHONPATH=. python benchmarks/agent_tokens.py --model default --sae default --features 3

Tokens are counted with the subject model's tokenizer with --model, else as ~4 characters a token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sage.llm.base import Backend, LLMRequest, Usage  # noqa: E402
from sage.testing import answer  # noqa: E402


class CountingScriptedExplainer(Backend):
    """Scripted answers; records, per call, the tokens of each message sent and of the reply."""

    name = "scripted"
    price_model = None

    def __init__(self, count):
        super().__init__()
        self.count = count
        self.calls: list[dict] = []

    def _call(self, messages: list[dict], schema: dict, req: LLMRequest) -> tuple[dict, Usage]:  # noqa: ARG002
        data = answer(req.task, len(self.calls))
        sizes = [self.count(m["content"]) for m in messages]
        reply = self.count(json.dumps(data))
        self.calls.append(
            {"task": req.task, "roles": [m["role"] for m in messages], "sizes": sizes, "reply": reply}
        )
        return data, Usage(sum(sizes), reply)


def transcript_cost(calls: list[dict]) -> int:
    """Tokens if every call re-sent one growing conversation: the system prompt once, then all
    earlier prompts and replies, then this prompt; plus every reply as output."""
    total, history = 0, 0
    for c in calls:
        system = sum(s for r, s in zip(c["roles"], c["sizes"]) if r == "system")
        prompt = sum(s for r, s in zip(c["roles"], c["sizes"]) if r != "system")
        total += system + history + prompt + c["reply"]
        history += prompt + c["reply"]
    return total


def tiny_session(workdir: Path, backend):
    """Tiny random-init model + SAE (`sage.testing`) with a freshly mined store."""
    from sage.model.subject import load_subject
    from sage.runs import Session
    from sage.testing import build_model, build_sae, build_store

    build_model(workdir / "model")
    build_sae(workdir / "sae")
    subject = load_subject(str(workdir / "model"), str(workdir / "sae"), dtype="float32", device="cpu")
    return Session(subject, build_store(subject, workdir / "store"), backend, "tiny")


def counter(kind: str, tokenizer):
    if kind == "chars":
        return lambda text: max(1, len(text) // 4)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model (default: the tiny test fixtures; 'default' = embedded SmolLM2)")
    ap.add_argument("--sae", default="default", help="SAE, with --model (default: default)")
    ap.add_argument("--corpus", default="default", help="corpus, with --model (default: default)")
    ap.add_argument("--features", type=int, default=3, help="features to average over (most frequent ones)")
    ap.add_argument("--max-rounds", type=int, default=6)
    ap.add_argument(
        "--count",
        choices=["auto", "tokenizer", "chars"],
        default="auto",
        help="how to count tokens: the subject's tokenizer, or ~4 characters a token "
        "(auto: the tokenizer with --model, chars for the tiny fixtures, whose toy BPE has 400 tokens)",
    )
    ap.add_argument("--json", action="store_true", help="print the table as JSON")
    args = ap.parse_args(argv)

    from sage.runs import Session, explain
    from sage.testing import live_features

    backend = CountingScriptedExplainer(lambda _text: 0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            opened = Session.open(args.model, args.sae, args.corpus, "offline")
            session = Session(opened.subject, opened.store, backend, opened.corpus_name)
        else:
            os.environ.setdefault(
                "SAGE_HOME", str(Path(tmp) / "sage_home")
            )  # keep fixture caches out of ~/.cache
            session = tiny_session(Path(tmp), backend)
        if args.count == "auto":
            args.count = "tokenizer" if args.model else "chars"
        backend.count = counter(args.count, session.subject.tokenizer)
        features = live_features(session.store, args.features)
        rows = []
        for rounds in range(1, args.max_rounds + 1):
            sage_tokens = transcript = calls = 0
            for f in features:
                backend.calls = []
                e = explain(f, session=session, max_rounds=rounds).to_dict()
                if e["rounds"] != rounds:
                    raise RuntimeError(f"feature {f} stopped after {e['rounds']} rounds ({e['stop_reason']})")
                sage_tokens += e["cost"]["input_tokens"] + e["cost"]["output_tokens"]
                transcript += transcript_cost(backend.calls)
                calls += len(backend.calls)
            n = len(features)
            rows.append(
                {
                    "rounds": rounds,
                    "llm_calls": calls / n,
                    "sage_tokens": round(sage_tokens / n),
                    "transcript_tokens": round(transcript / n),
                    "ratio": round(transcript / sage_tokens, 2),
                }
            )

    for prev, row in zip([None, *rows], rows):
        row["sage_delta"] = row["sage_tokens"] - (prev["sage_tokens"] if prev else 0)
        row["transcript_delta"] = row["transcript_tokens"] - (prev["transcript_tokens"] if prev else 0)
    if args.json:
        print(json.dumps({"features": features, "count": args.count, "rows": rows}, indent=2))
        return 0
    print(
        f"LLM tokens per feature (mean over features {features}; counted by {args.count}); "
        "delta = added by that round"
    )
    print(f"{'rounds':>6} {'calls':>6} {'SAGE':>9} {'delta':>7} {'transcript':>11} {'delta':>7} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['rounds']:>6} {r['llm_calls']:>6.1f} {r['sage_tokens']:>9} {r['sage_delta']:>7} "
            f"{r['transcript_tokens']:>11} {r['transcript_delta']:>7} {r['ratio']:>6.2f}"
        )
    per_round = [r["sage_delta"] for r in rows[1:]]
    grow = [r["transcript_delta"] for r in rows[1:]]
    print(
        f"SAGE adds {min(per_round)}-{max(per_round)} tokens per round (linear); the transcript adds "
        f"{grow[0]} in round 2 and {grow[-1]} in round {rows[-1]['rounds']} (quadratic)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
