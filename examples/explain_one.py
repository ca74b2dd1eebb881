"""Explain one feature of the embedded default from Python and print what SAGE found.

python examples/explain_one.py 4213
"""

import sys

from sage import explain

feature = int(sys.argv[1]) if len(sys.argv) > 1 else 4213
expl = explain(feature, max_rounds=3, on_event=lambda msg: print("[sage]", msg))
print("labels:", expl.labels)
print(expl.description)
for e in sorted(expl.to_dict()["evidence"], key=lambda e: -e["normalized"])[:5]:
    where = repr(e["max_token"]) if e["max_token"] is not None else "(silent)"
    print(f"{e['normalized']:.2f}  {where:<12} {e['text'][:70]!r}")
