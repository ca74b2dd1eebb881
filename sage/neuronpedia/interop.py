"""SAGE explanations in Neuronpedia's export layout, and Neuronpedia explanation exports in SAGE's.

The layout is the one Neuronpedia's own dump writes and its importer reads
(utils/neuronpedia-utils/neuronpedia_utils/export-data.py; docs/neuronpedia.md):

    <modelId>/<sourceId>/source.jsonl                 the Source row (saelensConfig: d_sae, hook_name)
    <modelId>/<sourceId>/features/batch-N.jsonl       Neuron rows (maxActApprox, frac_nonzero)
    <modelId>/<sourceId>/explanations/batch-N.jsonl   Explanation rows (description, typeName, ...)
    <modelId>/<sourceId>/activations/batch-N.jsonl    Activation rows (tokens, values, maxValue, ...)

1024 rows per batch file, ordered by feature index (the dump's `FEATURES_EXPLANATIONS_BATCH_SIZE`);
the importer also reads the dump's gzipped `batch-N.jsonl.gz`.

A SAGE explanation becomes one Explanation row per label (`description` = the label, the form of a
Neuronpedia explanation) with `typeName` "sage", `explanationModelName` the explainer and `notes`
the long description; importing those rows gives back the labels and the description. Hypotheses,
evidence and scores have no place in the layout and are not exported (`--format jsonl` keeps them).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import prompts
from sage.errors import ConfigError
from sage.io import cache_key, write_text
from sage.model.positions import peak_position, skip_positions
from sage.neuronpedia.api import check
from sage.neuronpedia.source import PREFIX
from sage.version import __version__

#: rows per batch file, as Neuronpedia's dump writes them
BATCH_ROWS = 1024
#: `typeName` of the Explanation rows SAGE writes (not a type registered on neuronpedia.org: an
#: upload needs it registered there, or set to null)
SAGE_TYPE = "sage"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: the explanation type the SAGE paper compares against (OpenAI's token / activation-pair explainer;
#: jiujiubuhejiu/SAGE scripts/evaluate.py `call_neuronpedia_api` asks for it, else takes the first)
PAPER_TYPE = "oai_token-act-pair"


def pick_explanation(explanations: Sequence[dict]) -> dict | None:
    """Neuronpedia's explanation to compare against: the first of type `PAPER_TYPE` in the order
    Neuronpedia lists them (best scored first), else the first listed; None when there is none."""
    return next((e for e in explanations if e.get("typeName") == PAPER_TYPE), None) or next(
        iter(explanations), None
    )


def neuronpedia_ids(
    feature: dict, model_id: str | None = None, source_id: str | None = None
) -> tuple[str, str]:
    """(modelId, sourceId) for an explanation's `feature` block: Neuronpedia's own for a Neuronpedia
    subject, else the model name and the SAE label made id-safe (or the ones given)."""
    sae = str(feature["sae"])
    if sae.startswith(PREFIX) and sae.count("/") == 1:
        m, s = sae[len(PREFIX) :].split("/")
    else:  # a local folder is named by its last part; `release:id` becomes `release-id`
        m = _UNSAFE.sub("-", Path(str(feature["model"])).name).strip("-")
        s = _UNSAFE.sub("-", Path(sae).name if "/" in sae and ":" not in sae else sae).strip("-")
    return model_id or m, source_id or s or "sae"


def _batches(rows: list[dict], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for b in range(0, len(rows), BATCH_ROWS):
        path = folder / f"batch-{b // BATCH_ROWS}.jsonl"
        write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[b : b + BATCH_ROWS]))
        paths.append(path)
    return paths


def export_neuronpedia(
    explanations: Sequence[dict],
    out: Path,
    contexts: Callable[[int], Sequence] | None = None,
    model_id: str | None = None,
    source_id: str | None = None,
) -> dict:
    """Write `explanations` (Explanation dicts of one subject) in Neuronpedia's layout under `out`.

    contexts: feature -> its top contexts (objects with `tokens`, `acts`, raw activations, position 0
    the sink), written as Activation rows; None writes no activations.
    Returns {"folder", "features", "explanations", "activations", "files"}.
    """
    good = sorted((x for x in explanations if "error" not in x), key=lambda x: x["feature"]["index"])
    if not good:
        raise ConfigError("no successful explanation to export")
    feats = {(x["feature"]["model"], x["feature"]["sae"], x["feature"]["hook_name"]) for x in good}
    if len(feats) > 1:
        raise ConfigError(f"the results mix {len(feats)} subjects; export one subject at a time")
    first = good[0]["feature"]
    mid, sid = neuronpedia_ids(first, model_id, source_id)
    folder = Path(out) / mid / sid
    source_row = {
        "id": sid,
        "modelId": mid,
        "setName": sid,
        "saelensConfig": {
            "d_sae": first["d_sae"],
            "hook_name": first["hook_name"],
            "model_name": first["model"],
            "sage_sae": first["sae"],
        },
        "notes": f"exported by SAGE {__version__}",
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "source.jsonl", json.dumps(source_row) + "\n")
    neurons, rows, acts = [], [], []
    for x in good:
        f = x["feature"]
        idx = str(f["index"])
        neurons.append(
            {
                "modelId": mid,
                "layer": sid,
                "index": idx,
                "maxActApprox": f["max_activation"],
                "frac_nonzero": f.get("frequency", 0.0),
            }
        )
        for i, label in enumerate(x["labels"]):
            rows.append(
                {
                    "id": "sage-" + cache_key(mid, sid, idx, i, label),
                    "modelId": mid,
                    "layer": sid,
                    "index": idx,
                    "authorId": None,
                    "description": label,
                    "embedding": None,
                    "typeName": SAGE_TYPE,
                    "explanationModelName": x["references"]["explainer"],
                    "notes": x["description"],
                    "umap_x": None,
                    "umap_y": None,
                    "umap_cluster": None,
                    "umap_log_feature_sparsity": None,
                }
            )
        for n, c in enumerate(contexts(f["index"]) if contexts else []):
            acts.append(_activation_row(c, mid, sid, idx, n))
    files = [folder / "source.jsonl"]
    files += _batches(neurons, folder / "features")
    files += _batches(rows, folder / "explanations")
    files += _batches(acts, folder / "activations") if acts else []
    return {
        "folder": str(folder),
        "features": len(neurons),
        "explanations": len(rows),
        "activations": len(acts),
        "files": [str(p) for p in files],
    }


def _activation_row(c, mid: str, sid: str, idx: str, n: int) -> dict:
    """An Activation row: the context's tokens and values. A sink placeholder (the empty string in
    front, `sage.neuronpedia.source.with_sink`) is dropped; a real sink token is kept, as in
    Neuronpedia's data, and never counted for the maximum."""
    toks, vals, skip = list(c.tokens), [round(float(a), 5) for a in c.acts], skip_positions()
    if toks[:1] == [""]:
        toks, vals, skip = toks[1:], vals[1:], skip - 1
    peak = peak_position(vals, skip)
    return {
        "id": "sage-" + cache_key(mid, sid, idx, "act", n),
        "modelId": mid,
        "layer": sid,
        "index": idx,
        "creatorId": None,
        "dataSource": "sage",
        "tokens": toks,
        "values": vals,
        "maxValue": vals[peak] if vals else 0.0,
        "minValue": min(vals) if vals else 0.0,
        "maxValueTokenIndex": peak,
        "dfaValues": [],
        "dfaMaxValue": None,
        "dfaTargetIndex": None,
        "binContains": None,
        "binMin": None,
        "binMax": None,
    }


# -- import -----------------------------------------------------------------------------------------
def _read_rows(path: Path) -> list[dict]:
    """The rows of a `.jsonl` or `.jsonl.gz` file; a line that is not JSON is a ConfigError."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n} is not a JSON line ({exc})") from exc
    return rows


def _batch_files(folder: Path) -> list[Path]:
    def number(p: Path) -> int:
        m = re.search(r"batch-(\d+)", p.name)
        return int(m.group(1)) if m else 0

    return sorted((p for p in folder.glob("batch-*.jsonl*") if p.is_file()), key=number)


def _explanation_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"--neuronpedia {path} does not exist")
    folders = sorted({p.parent for p in path.rglob("batch-*.jsonl*") if p.parent.name == "explanations"})
    if not folders:
        raise ConfigError(f"{path} holds no explanations/batch-N.jsonl[.gz] (Neuronpedia's export layout)")
    return [f for d in folders for f in _batch_files(d)]


def import_neuronpedia(
    path: Path,
    explainer: str | None = None,
    d_sae: int | None = None,
) -> list[dict]:
    """Explanation dicts (prompts/schemas/explanation.json) from a Neuronpedia explanations export:
    a folder in the layout above, or one explanations batch file (its `../source.jsonl` and
    `../features/` are read when there).

    Per feature, the rows of one explainer make one explanation: labels = their descriptions, the
    description = their `notes` (SAGE's exports) or the first label. explainer: take the rows whose
    `explanationModelName` (or `typeName`) is this; default: `pick_explanation`'s choice (the first
    of the SAGE paper's type, else the first listed). d_sae: when the export's source row does not
    state it. Sorted by (model, source, feature).
    """
    path = Path(path)
    groups: dict[tuple[str, str, int], dict[str, list[dict]]] = {}
    folders: dict[tuple[str, str], Path] = {}
    for file in _explanation_files(path):
        for n, row in enumerate(_read_rows(file), 1):
            check("explanation_export", row, f"{file}:{n}", ConfigError)
            key = (row["modelId"], row["layer"], int(row["index"]))
            who = row.get("explanationModelName") or row.get("typeName") or "neuronpedia"
            groups.setdefault(key, {}).setdefault(who, []).append(row)
            folders.setdefault(key[:2], file.parent.parent)
    meta = {ms: _source_meta(folder, ms, d_sae) for ms, folder in folders.items()}
    out = []
    for key in sorted(groups):
        by_who = groups[key]
        if explainer is not None:
            chosen = [w for w, rows in by_who.items() if explainer in (w, rows[0].get("typeName"))]
            if not chosen:
                continue
            who = chosen[0]
        else:
            best = pick_explanation([rows[0] for rows in by_who.values()])
            who = next(w for w, rows in by_who.items() if rows[0] is best)
        rec = _record(key, who, by_who[who], meta[key[:2]])
        errors = sorted(prompts.validator("explanation").iter_errors(rec), key=lambda e: list(e.path))
        if errors:
            raise ConfigError(f"imported explanation of {key} does not match the schema: {errors[0].message}")
        out.append(rec)
    if not out:
        raise ConfigError(f"{path}: no explanation" + (f" by {explainer!r}" if explainer else ""))
    return out


def _source_meta(folder: Path, ids: tuple[str, str], d_sae: int | None) -> dict:
    """What the explanation record needs beyond the rows: width, hook, names, and per feature its
    max activation and frequency (features/)."""
    mid, sid = ids
    src_file = folder / "source.jsonl"
    src = _read_rows(src_file)[0] if src_file.exists() else {}
    cfg = src.get("saelensConfig") or {}
    width = d_sae or cfg.get("d_sae")
    if not isinstance(width, int) or width < 1:
        raise ConfigError(
            f"the export of {mid}/{sid} does not state the SAE's width ({src_file}: saelensConfig.d_sae); "
            "pass --d-sae"
        )
    neurons = {}
    for f in _batch_files(folder / "features"):
        for row in _read_rows(f):
            neurons[int(row["index"])] = row
    return {
        "model": cfg.get("model_name") or mid,
        "sae": cfg.get("sage_sae") or f"{PREFIX}{mid}/{sid}",
        "hook_name": cfg.get("hook_name") or sid,
        "d_sae": width,
        "neurons": neurons,
        "features_dir": folder / "features",
    }


def _record(key: tuple[str, str, int], who: str, rows: list[dict], meta: dict) -> dict:
    mid, sid, index = key
    neuron = meta["neurons"].get(index)
    if neuron is None or neuron.get("maxActApprox") is None:
        raise ConfigError(
            f"no features/ record with maxActApprox for {mid}/{sid}/{index} in {meta['features_dir']}: "
            "an explanation record states the feature's max activation"
        )
    labels = list(dict.fromkeys(r["description"] for r in rows))
    sage_made = rows[0].get("typeName") == SAGE_TYPE
    description = rows[0].get("notes") if sage_made and rows[0].get("notes") else labels[0]
    return {
        "feature": {
            "model": meta["model"],
            "sae": meta["sae"],
            "hook_name": meta["hook_name"],
            "index": index,
            "d_sae": meta["d_sae"],
            "max_activation": float(neuron["maxActApprox"]),
            "frequency": min(float(neuron.get("frac_nonzero") or 0.0), 1.0),
        },
        "labels": labels,
        "description": description,
        "predicate": None,
        "hypotheses": [],
        "evidence": [],
        "scores": {},
        "cost": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0, "llm_calls": 0, "probes": 0},
        "stop_reason": "imported from a Neuronpedia export",
        "rounds": 0,
        "timings": {"total": 0.0},
        "concluded_by": who if sage_made else f"neuronpedia ({who})",
        "references": {
            "model": meta["model"],
            "sae": meta["sae"],
            "hook_name": meta["hook_name"],
            "corpus": "neuronpedia",
            "explainer": who,
            "sage_version": __version__,
        },
    }


def write_records(records: Iterable[dict], out: Path) -> int:
    """Write explanation records as a results JSONL (one per line, replaced atomically); their count."""
    records = list(records)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return len(records)
