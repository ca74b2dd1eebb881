"""`sage report` on the command line: a site from a results file, clear one-line errors."""

from __future__ import annotations

import pytest

from sage.cli.app import main
from sage.cli.report import check_references, open_store
from sage.errors import ConfigError
from sage.report.inputs import read_results


def test_report_without_the_store_writes_every_page(results, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["report", "--results", str(results), "--out", str(out), "--no-store"]) == 0
    assert "3 features" in capsys.readouterr().out
    pages = sorted(p.name for p in (out / "features").iterdir())
    assert pages == sorted(f"{f}.html" for f in read_results(results))
    page = (out / "features" / pages[0]).read_text(encoding="utf-8")
    assert "No activation store was read" in page and 'class="heat"' in page  # probes still drawn


def test_missing_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "s")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_of_another_model_are_refused(results, tiny_subject):
    recs = read_results(results)
    check_references(recs, tiny_subject)  # the same subject: fine
    f = next(iter(recs))
    recs[f] = {**recs[f], "references": {**recs[f]["references"], "sae": "other-sae"}}
    with pytest.raises(ConfigError, match="other-sae"):
        check_references(recs, tiny_subject)


def test_a_report_never_mines(tiny_subject, sage_home, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Some text to mine.")
    with pytest.raises(ConfigError, match="not mined"):
        open_store(tiny_subject, str(corpus))


def test_explain_html_writes_one_standalone_page_with_the_store_contexts(results, store, tmp_path):
    from sage.cli.report import write_html
    from sage.llm.offline import OfflineExplainer
    from sage.runs import Session

    f, rec = next(iter(read_results(results).items()))
    path = write_html(rec, tmp_path / "page.html", Session(store.subject, store, OfflineExplainer(), "tiny"))
    page = path.read_text(encoding="utf-8")
    assert f"Feature {f}" in page and 'id="top-contexts"' in page and "MI words" in page
    assert f'data-act="{store.top(f, 1)[0].max_act:.4f}"' in page
