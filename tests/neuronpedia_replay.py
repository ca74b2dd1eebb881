"""A replay of Neuronpedia's API on 127.0.0.1, for tests and the acceptance run. NOT the real model.

It speaks the two endpoints SAGE uses (docs/neuronpedia.md), from fixtures written to the documented
formats (tests/neuronpedia_fixtures/, written by `--write-fixtures`):

    GET  /api/feature/{modelId}/{source}/{index}  features/<index>.json, else 404 {"error": ...}
    POST /api/activation/new                      per text: the fixture context with that exact text,
                                                  else the replay rule of rules.json (a regex tokenizer
                                                  and a per-feature word -> value table)

so every answer, including one for a text no fixture holds, is deterministic and documented.

    from tests.neuronpedia_replay import Fault, serve
    with serve(script=[Fault(429, headers={"retry-after": "0"})], api_key="k") as srv:
        ...  # srv.url, srv.requests: [(method, path, body)], in order

`script`: faults served, in order, before normal answers (one per request); or a callable
`(method, path, n) -> Fault | None` (n counts requests from 0). `api_key`: answers 401 unless the
request carries it in `x-api-key`.

    python -m tests.neuronpedia_replay --port 8765   # serve until interrupted
    python -m tests.neuronpedia_replay --write-fixtures   # rewrite features/*.json from rules.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "neuronpedia_fixtures"
TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]|\s+$")
FEATURE = re.compile(r"^/api/feature/([^/]+)/([^/]+)/(\d+)$")


@dataclass
class Fault:
    """One scripted answer in place of the normal one: a status, a raw body, headers."""

    status: int
    body: str = ""
    headers: dict = field(default_factory=dict)


def rule_tokens(text: str) -> list[str]:
    return ["<bos>", *TOKEN.findall(text)]


def rule_values(tokens: list[str], weights: dict[str, float]) -> list[float]:
    return [0.0 if t == "<bos>" else weights.get(t.strip().lower(), 0.0) for t in tokens]


class Replay:
    def __init__(self, fixtures: Path = FIXTURES, script=None, api_key: str | None = None):
        self.rules = json.loads((fixtures / "rules.json").read_text())
        self.features = {
            p.stem: json.loads(p.read_text()) for p in sorted((fixtures / "features").glob("*.json"))
        }
        self.known = {
            (f, "".join(a["tokens"][1:])): a for f, rec in self.features.items() for a in rec["activations"]
        }
        self.script: list[Fault] | Callable = script if callable(script) else list(script or [])
        self.api_key = api_key
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()

    def fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            n = len(self.requests) - 1
            if callable(self.script):
                return self.script(method, path, n)
            return self.script.pop(0) if self.script else None

    def answer(self, method: str, path: str, body: dict | None, key: str | None) -> tuple[int, object]:
        if self.api_key and key != self.api_key:
            return 401, {"error": "Unauthorized"}
        m = FEATURE.match(path)
        if method == "GET" and m:
            model, source, index = m.groups()
            rec = self.features.get(index)
            if model != self.rules["model"] or source != self.rules["source"] or rec is None:
                return 404, {"error": "Not Found"}
            return 200, rec
        if method == "POST" and path == "/api/activation/new":
            feat = (body or {}).get("feature") or (body or {}).get("neuron") or {}
            index = str(feat.get("index"))
            weights = self.rules["weights"].get(index)
            if weights is None or feat.get("modelId") != self.rules["model"]:
                return 500, {"message": f"replay has no rule for feature {feat}"}
            texts = body.get("customText")
            many = isinstance(texts, list)
            out = [self.activation(index, weights, t) for t in (texts if many else [texts])]
            return 200, out if many else out[0]
        return 404, {"error": "Not Found"}

    def activation(self, index: str, weights: dict, text: str) -> dict:
        rec = self.known.get((index, text))
        toks = rec["tokens"] if rec else rule_tokens(text)
        vals = rec["values"] if rec else rule_values(toks, weights)
        top = max(vals)
        return {
            "tokens": toks,
            "values": vals,
            "maxValue": top,
            "minValue": min(vals),
            "maxValueTokenIndex": vals.index(top),
            "modelId": self.rules["model"],
            "layer": self.rules["source"],
            "index": index,
            "dataSource": "Neuronpedia replay (tests/neuronpedia_replay.py)",
        }


SUBJECTS = ["My neighbour", "The old farmer", "A young girl", "Our teacher", "The tired runner", "His sister"]
TEMPLATES = {
    # 4212's contexts mention a dog: feature 4213 fires on them, so they are no negatives of 4213
    "4212": ["{s} kept the dog inside because of the {w}.", "{s} said the {w} would last all week."],
    "4213": [
        "{s} walked the {w} along the river before breakfast.",
        "{s} bought a new {w} bed at the market.",
        "{s} laughed when the {w} jumped into the lake.",
        "Everyone knew that {s} loved the {w} more than anything.",
    ],
    "4214": ["{s} checked the {w} twice before signing.", "{s} complained about the {w} at the store."],
    "4215": ["{s} practised the {w} every evening after dinner.", "{s} talked about the {w} for an hour."],
}
#: contexts per feature; 4213 is the feature the tests and the acceptance run explain
COUNTS = {"4212": 26, "4213": 64, "4214": 26, "4215": 26}


def write_fixtures(here: Path = FIXTURES) -> None:
    """features/<index>.json from rules.json: made-up texts whose per-token values follow the replay
    rule, in the feature endpoint's format, so a fixture context sent back as a probe gets the values
    its record shows."""
    rules = json.loads((here / "rules.json").read_text())
    out = here / "features"
    out.mkdir(exist_ok=True)
    source = {
        "id": rules["source"],
        "modelId": rules["model"],
        "setName": "gemmascope-res-16k",
        "saelensConfig": {
            "d_sae": 16384,
            "hook_name": "blocks.20.hook_resid_post",
            "architecture": "jumprelu",
            "model_name": rules["model"],
        },
        "saelensRelease": "gemma-scope-2b-pt-res-canonical",
        "saelensSaeId": "layer_20/width_16k/canonical",
    }
    for feature, weights in rules["weights"].items():
        words = sorted(weights, key=weights.get, reverse=True)
        combos = itertools.product(TEMPLATES[feature], SUBJECTS, words)
        acts = []
        for n, (tpl, s, w) in enumerate(itertools.islice(combos, COUNTS[feature])):
            toks = rule_tokens(tpl.format(s=s, w=w))
            vals = rule_values(toks, weights)
            top = max(vals)
            acts.append(
                {
                    "id": f"replay-{feature}-{n}",
                    "modelId": rules["model"],
                    "layer": rules["source"],
                    "index": feature,
                    "tokens": toks,
                    "values": vals,
                    "maxValue": top,
                    "minValue": min(vals),
                    "maxValueTokenIndex": vals.index(top),
                    "dataSource": "replay fixture",
                }
            )
        acts.sort(key=lambda a: -a["maxValue"])
        firing = [v for a in acts for v in a["values"] if v > 0]
        top = max(firing)
        edges = [top * i / 10 for i in range(11)]
        heights = [sum(lo < v <= hi for v in firing) for lo, hi in zip(edges, edges[1:])]
        record = {
            "modelId": rules["model"],
            "layer": rules["source"],
            "index": feature,
            "maxActApprox": top,
            "frac_nonzero": round(len(firing) / sum(len(a["values"]) - 1 for a in acts), 6),
            "freq_hist_data_bar_heights": heights,
            "freq_hist_data_bar_values": [round((lo + hi) / 2, 4) for lo, hi in zip(edges, edges[1:])],
            "pos_str": [" " + w for w in words[:5]],
            "pos_values": [round(weights[w] / 10, 3) for w in words[:5]],
            "neg_str": [],
            "neg_values": [],
            "source": source,
            "activations": acts,
            "explanations": rules["explanations"].get(feature, []),
        }
        (out / f"{feature}.json").write_text(json.dumps(record, indent=1) + "\n")


def _handler(replay: Replay):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with replay.lock:
                replay.requests.append((method, self.path, body))
            fault = replay.fault(method, self.path)
            if fault is not None:
                status, text, headers = fault.status, fault.body, fault.headers
            else:
                status, data = replay.answer(method, self.path, body, self.headers.get("x-api-key"))
                text, headers = json.dumps(data), {}
            payload = text.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):  # noqa: N802  (http.server's naming)
            self._serve("GET")

        def do_POST(self):  # noqa: N802
            self._serve("POST")

    return Handler


@contextmanager
def serve(script=None, api_key: str | None = None, fixtures: Path = FIXTURES, port: int = 0):
    replay = Replay(fixtures, script, api_key)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(replay))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    replay.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--write-fixtures", action="store_true", help="rewrite the fixtures from rules.json")
    args = p.parse_args()
    if args.write_fixtures:
        write_fixtures()
        return
    with serve(port=args.port) as srv:
        print(f"Neuronpedia replay (not the real model) at {srv.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
