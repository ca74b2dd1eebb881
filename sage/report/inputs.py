"""Read what a report shows: explanation results, score records, a `sage compare` folder, steering
outputs. Files only; every record is returned as read (nothing recomputed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sage.errors import ConfigError
from sage.io import read_jsonl


def _feature_of(rec: dict) -> int:
    f = rec.get("feature")
    return int(f["index"] if isinstance(f, dict) else f)


def read_results(path: Path) -> dict[int, dict]:
    """feature -> its last explanation record in a results JSONL (`sage batch`, `sage compare`);
    failed features keep their `{"feature": {"index": N}, "error": ...}` record."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--results {path} does not exist")
    out: dict[int, dict] = {}
    for i, rec in enumerate(read_jsonl(path), 1):
        try:
            out[_feature_of(rec)] = rec
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: record {i} names no feature index ({exc})") from exc
    if not out:
        raise ConfigError(f"{path} holds no explanation records")
    return dict(sorted(out.items()))


def read_scores(path: Path) -> dict[int, dict[str, dict]]:
    """feature -> method -> its last score record (`sage eval --out`, or a compare folder's scores.jsonl)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"score records {path} do not exist")
    out: dict[int, dict[str, dict]] = {}
    for rec in read_jsonl(path):
        if "metrics" in rec and "method" in rec:
            out.setdefault(_feature_of(rec), {})[rec["method"]] = rec
    return out


@dataclass(frozen=True)
class CompareRun:
    """A `sage compare` output folder."""

    folder: Path
    #: its summary.json: per metric, each method's mean, 95% CI, n and the win rates
    summary: dict
    #: feature -> method -> score record (scores.jsonl)
    scores: dict[int, dict[str, dict]]
    #: its scores.png, when one was drawn
    plot: Path | None


def read_compare(folder: Path) -> CompareRun:
    folder = Path(folder)
    summary = folder / "summary.json"
    if not summary.is_file():
        raise ConfigError(f"--compare {folder} has no summary.json (is it a `sage compare --out` folder?)")
    scores = read_scores(folder / "scores.jsonl") if (folder / "scores.jsonl").is_file() else {}
    plot = folder / "scores.png"
    return CompareRun(folder, json.loads(summary.read_text()), scores, plot if plot.is_file() else None)


def read_steering(path: Path) -> dict[int, list[dict]]:
    """feature -> the `sage steer --json` outputs that steered it. The file holds one JSON object
    (one run) or JSON lines (several)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--steer {path} does not exist")
    text = path.read_text(encoding="utf-8").strip()
    try:
        runs = [json.loads(text)]
    except json.JSONDecodeError:
        runs = read_jsonl(path)
    out: dict[int, list[dict]] = {}
    for run in runs:
        if not isinstance(run, dict) or "steering" not in run or "unsteered" not in run:
            raise ConfigError(f"--steer {path}: not the output of `sage steer --json`")
        for f in run["steering"]["features"]:
            out.setdefault(int(f), []).append(run)
    return out


@dataclass(frozen=True)
class ReportInputs:
    """Everything read for one report."""

    explanations: dict[int, dict]
    #: feature -> method -> score record (from --eval)
    scores: dict[int, dict[str, dict]] = field(default_factory=dict)
    compare: CompareRun | None = None
    steering: dict[int, list[dict]] = field(default_factory=dict)
