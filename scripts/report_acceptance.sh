#!/usr/bin/env bash
# The acceptance run of `sage report` (docs/report_acceptance.md), on the mined default store:
#   bash scripts/report_acceptance.sh WORKDIR     (SAGE / PYTHON: the sage and python to use)
# batch 5 random features, write the site, open it in headless Chromium, compare feature pages with
# `sage top --json` and a probe with `sage activations --json`, then `sage explain --html`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${1:-.}" && cd "${1:-.}"
S=${SAGE:-sage}
PY=${PYTHON:-python}
rm -rf r.jsonl site shots
echo "== sage batch"; /usr/bin/time -f "%e s" $S batch --random 5 --seed 0 --out r.jsonl
echo "== sage report"; /usr/bin/time -f "%e s" $S report --results r.jsonl --out site/
F=$($PY -c "import json;print(json.loads(open('r.jsonl').readline())['feature']['index'])")
echo "== sage top --feature $F --json"; $S top --feature $F --json > top_$F.json
echo "== report_check"; $PY "$HERE/report_check.py" site --top-json top_$F.json --shots shots
echo "== probe check"
$PY - <<PYEOF > probe_text.txt
import json
rec = json.loads(open("r.jsonl").readline())
e = max(rec["evidence"], key=lambda e: e["max_activation"])
json.dump(e, open("probe.json", "w"))
print(e["text"], end="")
PYEOF
$S activations --feature $F --text "$(cat probe_text.txt)" --json > act.json
$PY - <<PYEOF
import json, re
e = json.load(open("probe.json")); a = json.load(open("act.json"))
page = open("site/features/$F.html").read()
start = page.index(f'aria-label="{e["probe_id"]}: token heat-map')
shown = re.findall(r'data-act="([^"]+)"', page[start: page.index("</div>", start)])
print("probe", e["probe_id"], repr(e["text"][:80]), "peak", e["max_activation"], "on", repr(e["max_token"]))
print("page == record:", shown == [f"{v:.4f}" for v in e["activations"]], len(shown), "values")
print("tokens == sage activations:", a["tokens"] == e["tokens"])
print("max |record - sage activations|:", max(abs(x - y) for x, y in zip(e["activations"], a["activations"])))
PYEOF
echo "== sage explain --html"; /usr/bin/time -f "%e s" $S explain --feature $F --html one.html > /dev/null
ls -la one.html
