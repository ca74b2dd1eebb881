"""Render the report with the Jinja2 templates in `sage/report/templates/` and write the site.

The CSS and JavaScript are inlined into every page, so a page works from `file://` with no server
and nothing fetched; the only extra file is the compare run's plot, copied beside the index.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sage.io import write_text
from sage.report import gather
from sage.report.inputs import ReportInputs
from sage.report.settings import REPORT, ReportConfig
from sage.version import __version__

#: (feature) -> (StoreFeature or None, vocabulary words or None): what the store adds to a page
FeatureExtras = Callable[[int], tuple[object | None, dict | None]]


def _num(v, places: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{places}f}"


def environment(cfg: ReportConfig = REPORT) -> Environment:
    env = Environment(
        loader=PackageLoader("sage.report", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda v, places=3: "—" if v is None else f"{100 * v:.{places}f}%"
    env.filters["sig"] = lambda v: "—" if v is None else f"{v:.3g}"
    # CSS / JS read through the same loader as the templates, to be inlined
    env.globals["asset"] = lambda name: env.loader.get_source(env, name)[0]
    env.globals["version"] = __version__
    env.globals["n_buckets"] = cfg.n_buckets
    return env


def render_index(
    env: Environment,
    inputs: ReportInputs,
    method: str | None,
    title: str,
    plot: str | None,
    examples: dict | None = None,
) -> str:
    metrics = gather.metric_names(inputs.scores, method)
    return env.get_template("index.html").render(
        examples=any(examples.values()) if examples else False,
        title=title,
        root="",
        rows=gather.index_rows(inputs, method, metrics, examples),
        metrics=metrics,
        method=method,
        compare=gather.compare_summary(inputs.compare),
        plot=plot,
        statuses=gather.STATUS_ORDER,
    )


def render_feature(env: Environment, page: dict, title: str, root: str | None = "../") -> str:
    """A feature page; `root` is the way back to the index (None: a standalone page, no index)."""
    return env.get_template("feature.html").render(title=title, root=root, p=page)


def write_site(
    inputs: ReportInputs,
    out: Path,
    extras: FeatureExtras | None = None,
    *,
    method: str | None = None,
    cfg: ReportConfig = REPORT,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> dict:
    """Write index.html, features/<N>.html (and the compare plot) under `out`. Returns a summary."""
    out = Path(out)
    (out / "features").mkdir(parents=True, exist_ok=True)
    env = environment(cfg)
    method = gather.choose_method(inputs.scores, method)
    plot = None
    if inputs.compare is not None and inputs.compare.plot is not None:
        shutil.copyfile(inputs.compare.plot, out / "compare-scores.png")
        plot = "compare-scores.png"
    examples = {}
    for f, rec in progress(inputs.explanations.items()):
        store, vocab = extras(f) if extras and "error" not in rec else (None, None)
        page = gather.feature_page(rec, inputs, store, vocab, cfg)
        write_text(out / gather.page_name(f), render_feature(env, page, f"Feature {f}"), "utf-8")
        examples[f] = gather.snippet(
            page.get("top", [None])[0] if page.get("top") else None, cfg.example_radius
        )
    index = render_index(env, inputs, method, "SAGE feature report", plot, examples)
    write_text(out / "index.html", index, "utf-8")
    return {"index": str(out / "index.html"), "features": len(inputs.explanations), "method": method}


def write_feature_page(
    rec: dict, path: Path, store=None, vocab: dict | None = None, cfg: ReportConfig = REPORT
) -> Path:
    """One self-contained page for one explanation (`sage explain --html FILE`)."""
    page = gather.feature_page(rec, ReportInputs({int(rec["feature"]["index"]): rec}), store, vocab, cfg)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, render_feature(environment(cfg), page, f"Feature {page['feature']}", root=None), "utf-8")
    return path
