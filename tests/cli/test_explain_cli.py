"""`sage explain` exit codes: an explainer that cannot be reached, or that fails during the run,
ends the command with exit 3 and a line saying why (never a "dead feature")."""

from __future__ import annotations

import json

import pytest

from sage import runs
from sage.cli import app as cli
from sage.cli.common import EXIT_EXPLAINER_FAILED
from sage.errors import ExplainerError
from sage.llm import RetryConfig
from sage.llm.offline import OfflineExplainer
from tests.agent_support import agent_store, build_store, live_features  # noqa: F401 (the `store` fixture)
from tests.scripted_servers import serve


@pytest.fixture()
def run_cli(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "COMMANDS", ["explain"])

    def run(*argv):
        code = cli.main(["explain", *argv, "--out", str(tmp_path / "out")])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_a_server_that_is_not_running_exits_3_in_one_line_before_loading_anything(run_cli, monkeypatch):
    real = runs.make_backend
    monkeypatch.setattr(runs, "make_backend", lambda spec: real(spec, retry=RetryConfig(2, 0.001, 0.01)))
    monkeypatch.setattr(runs, "load_subject", lambda *a, **k: pytest.fail("the model was loaded"))
    with serve("openai", []) as srv:
        url = srv.url  # nothing listens there once the block ends
    code, out, err = run_cli("--feature", "3", "--explainer", f"openai-compatible:{url}:smollm2")
    assert code == EXIT_EXPLAINER_FAILED == 3 and out == ""
    assert err.count("\n") == 1 and err.startswith("sage explain: explanation failed: ")
    assert f"cannot reach the server at {url}" in err and "gave up after 2 attempts" in err


class GoneAfterSeed(OfflineExplainer):
    """The explainer's server goes away before the first question."""

    def _call(self, messages, schema, req):
        raise ExplainerError("openai-compatible:http://127.0.0.1:9/v1:m: cannot reach the server")


def test_a_failure_during_the_run_exits_3_and_the_saved_explanation_says_it_failed(
    run_cli, monkeypatch, store, tmp_path
):
    feature = live_features(store, 1)[0]
    session = runs.Session(store.subject, store, GoneAfterSeed(), "tiny")
    monkeypatch.setattr(runs.Session, "open", classmethod(lambda cls, *a, **k: session))
    code, out, err = run_cli("--feature", str(feature))
    assert code == 3 and out == ""  # no hypothesis was formed: nothing to show but the failure
    assert err.splitlines()[-1] == (
        "sage explain: explanation failed: openai-compatible:http://127.0.0.1:9/v1:m: cannot reach the server"
    )
    assert "never fired" not in err and "dead" not in err
    saved = json.loads((tmp_path / "out" / f"feature_{feature}.json").read_text())
    assert saved["labels"] == ["explanation failed"] and saved["stop_reason"].startswith("explainer_error")
    runs.validate_explanation(saved)
