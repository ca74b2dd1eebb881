"""The site of a real tiny run: the records keep what the heat-maps need, every page is written, and
the values in the pages are the stored activations (the store's top contexts, the probes' records)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from sage.errors import ConfigError
from sage.model.positions import peak_position
from sage.report import gather
from sage.report.inputs import ReportInputs, read_results, read_scores, read_steering
from sage.report.site import write_feature_page
from sage.report.store_data import store_feature
from sage.runs import validate_explanation


class Heats(HTMLParser):
    """The heat-maps of a page: [(aria-label of the group, [(token text, data-act, classes)])]."""

    def __init__(self):
        super().__init__()
        self.maps: list[tuple[str, list[list]]] = []
        self._tok: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if "heat" in cls:
            self.maps.append((a.get("aria-label", ""), []))
        elif "tok" in cls and "data-act" in a and self.maps:
            self._tok = ["", a["data-act"], cls]
            self.maps[-1][1].append(self._tok)

    def handle_data(self, data):
        if self._tok is not None:
            self._tok[0] += data

    def handle_endtag(self, tag):
        if tag == "span":
            self._tok = None


def heats(path) -> list[tuple[str, list[list]]]:
    p = Heats()
    p.feed(path.read_text(encoding="utf-8"))
    return p.maps


def test_evidence_records_keep_tokens_raw_activations_and_sinks(results):
    recs = read_results(results)
    assert len(recs) == 3
    for rec in recs.values():
        validate_explanation(rec)
        assert rec["evidence"], "the tiny run probes every feature"
        for e in rec["evidence"]:
            assert len(e["tokens"]) == len(e["activations"]) and e["sink_positions"] == [0]
            assert e["hypothesis_id"] in {h["id"] for h in rec["hypotheses"]} and e["expect"] in (
                "high",
                "low",
            )
            peak = peak_position(e["activations"])
            assert e["activations"][peak] == pytest.approx(e["max_activation"], abs=1e-5)
        decided = [h for h in rec["hypotheses"] for step in h["history"] if step["round"] > 0]
        assert decided and all("precision" in s for h in decided for s in h["history"] if s["round"] > 0)


def test_every_feature_has_a_page_and_the_index_links_them(site, results):
    index = (site / "index.html").read_text(encoding="utf-8")
    for f in read_results(results):
        assert (site / gather.page_name(f)).is_file()
        assert f'href="{gather.page_name(f)}"' in index
    assert index.count('<tr data-status="') == 3
    assert "detection accuracy" in index  # the score records' metric became a column
    assert index.count('<td class="example"') == 3


def test_top_context_heatmaps_show_the_stored_activations(site, store, results):
    f = next(iter(read_results(results)))
    stored = store.top(f, 3)
    maps = [m for m in heats(site / gather.page_name(f)) if m[0].startswith("top ")]
    assert len(maps) == min(10, len(store.top(f)))
    for ctx, (label, toks) in zip(stored, maps):
        assert label.startswith(f"top {stored.index(ctx) + 1} · context {ctx.context_id}")
        assert [t[0] for t in toks][1:] == ctx.tokens[1:]  # the sink is shown as its token
        assert [t[1] for t in toks] == [f"{a:.4f}" for a in ctx.acts]
        assert "sink" in toks[0][2]
        marked = [i for i, t in enumerate(toks) if "max" in t[2]]
        assert marked == [ctx.max_pos]


def test_probe_heatmaps_show_the_records_activations(site, results):
    f, rec = next(iter(read_results(results).items()))
    maps = [m for m in heats(site / gather.page_name(f)) if m[0].startswith("R")]
    assert len(maps) == len(rec["evidence"])
    by_id = {e["probe_id"]: e for e in rec["evidence"]}
    for label, toks in maps:
        e = by_id[label.split(":")[0]]
        assert [t[1] for t in toks] == [f"{a:.4f}" for a in e["activations"]]


def test_feature_page_sections(site, results):
    f = next(iter(read_results(results)))
    page = (site / gather.page_name(f)).read_text(encoding="utf-8")
    for needle in (
        'id="steering"',
        ">steered</h4>",  # the single run, side by side
        '<th scope="row">8</th>',  # the sweep's row of strength 8
        "Histogram of the maximum activation",
        "MI words",
        "Logit-lens tokens",
        "round 1",
        "as predicted",
        "Seconds per node",
        'id="output"',  # the explanation's output section
        "ablated on its own contexts",
    ):
        assert needle in page, needle
    import html

    text = html.unescape(page)
    for run in site.steering_runs:
        for gen in [run["unsteered"], run.get("steered"), *run.get("sweep", [])]:
            if gen is not None:
                assert gen["text"] in text


def test_gather_groups_probes_by_their_hypothesis(results):
    rec = next(iter(read_results(results).values()))
    groups = gather.probe_groups(rec, rec["feature"]["max_activation"], gather.REPORT)
    assert sum(len(g["probes"]) for g in groups) == len(rec["evidence"])
    for g in groups:
        assert {p["probe_id"] for p in g["probes"]} == {
            e["probe_id"] for e in rec["evidence"] if e["hypothesis_id"] == g["hypothesis"]["id"]
        }


def test_best_hypothesis_is_the_one_behind_the_predicate_else_the_best_f1():
    hyps = [{"id": "H1", "predicate": {"type": "a"}}, {"id": "H2", "predicate": {"type": "b"}}]
    assert gather.best_hypothesis({"hypotheses": hyps, "predicate": {"type": "b"}})["id"] == "H2"
    rec = {"hypotheses": hyps, "predicate": None, "scores": {"H1_f1": 0.2, "H2_f1": None}}
    assert gather.best_hypothesis(rec)["id"] == "H1"
    assert gather.status_of({"feature": {"index": 3}, "error": "boom"}) == "error"


def test_method_choice_prefers_the_named_one_then_the_most_common():
    scores = {1: {"a": {}, "b": {}}, 2: {"b": {}}}
    assert gather.choose_method(scores, "a") == "a"
    assert gather.choose_method(scores, "zzz") == "b"
    assert gather.choose_method({}, "a") is None


def test_a_standalone_page_has_no_index_link(results, store, tmp_path):
    f, rec = next(iter(read_results(results).items()))
    path = write_feature_page(rec, tmp_path / "one.html", store_feature(store, f))
    text = path.read_text(encoding="utf-8")
    assert "index.html" not in text and 'class="heat"' in text


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_results(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no explanation records"):
        read_results(empty)
    with pytest.raises(ConfigError, match="do not exist"):
        read_scores(tmp_path / "nope.jsonl")
    bad = tmp_path / "steer.json"
    bad.write_text('{"prompt": "x"}')
    with pytest.raises(ConfigError, match="sage steer --json"):
        read_steering(bad)


def test_a_failed_feature_gets_a_page_that_says_so(tmp_path):
    from sage.report.site import write_site

    recs = {7: {"feature": {"index": 7}, "error": "ExplainerError: quota"}}
    write_site(ReportInputs(recs), tmp_path)
    assert "quota" in (tmp_path / "features/7.html").read_text(encoding="utf-8")
    assert 'data-status="error"' in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_a_compare_folder_adds_its_table_plot_and_cis(results, tmp_path):
    import json

    from sage.evaluation.compare import write_report
    from sage.report.inputs import read_compare
    from sage.report.site import write_site

    recs = read_results(results)
    scores = [
        {"feature": f, "method": m, "scorer": "offline", "metrics": {"detection_accuracy": v + i / 10}}
        for i, f in enumerate(recs)
        for m, v in (("one-shot", 0.4), ("sage", 0.6))
    ]
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scores))
    write_report(scores, ["one-shot", "sage"], ["detection_accuracy"], folder)
    run = read_compare(folder)
    summary = run.summary["metrics"]["detection_accuracy"]["methods"]["sage"]
    write_site(ReportInputs(recs, compare=run), tmp_path / "site")
    index = (tmp_path / "site/index.html").read_text(encoding="utf-8")
    assert (tmp_path / "site/compare-scores.png").is_file() and 'src="compare-scores.png"' in index
    lo, hi = summary["ci95"]
    assert f"{summary['mean']:.3f}" in index and f"[{lo:.3f}, {hi:.3f}]" in index
    f = next(iter(recs))
    page = (tmp_path / "site" / gather.page_name(f)).read_text(encoding="utf-8")
    assert f"[{lo:.3f}, {hi:.3f}]" in page  # the method's CI beside this feature's own score


def test_an_accuracy_gets_a_wilson_interval_from_its_own_counts():
    rec = {
        "metrics": {"detection_accuracy": 0.7, "detection_f1": 0.6, "retrieval_accuracy": 0.25},
        "details": {
            "detection": {"tp": 4, "tn": 3, "fp": 1, "fn": 2, "n": 10},
            "generative": {"threshold": 1.0, "texts": [{"max_activation": a} for a in (2.0, 0.5, 0.1, 0.9)]},
        },
    }
    lo, hi, n = gather.accuracy_ci(rec, "detection_accuracy")
    assert n == 10 and lo == pytest.approx(0.3968, abs=1e-4) and hi == pytest.approx(0.8922, abs=1e-4)
    assert gather.accuracy_ci(rec, "retrieval_accuracy")[2] == 4
    rounded = {
        "metrics": {"fuzzing_accuracy": 0.583333},
        "details": {"fuzzing": {"tp": 4, "tn": 17, "n": 36}},
    }
    assert gather.accuracy_ci(rounded, "fuzzing_accuracy")[2] == 36  # 21/36, as a record rounds it
    assert gather.accuracy_ci(rec, "detection_f1") is None  # not a proportion
    wrong = {**rec, "metrics": {"detection_accuracy": 0.9}}  # counts that do not give the value back
    assert gather.accuracy_ci(wrong, "detection_accuracy") is None
