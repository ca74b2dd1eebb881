"""Shared pieces of the agent tests: a tiny mined store, and a scripted explainer that answers
every task of the loop with valid JSON (both from `sage.testing`, shared with the token benchmark).

The scripted answers keep one hypothesis open forever, so a run lasts exactly
`max_rounds` rounds (no early convergence), and give every probe a fresh text.
"""

from __future__ import annotations

import pytest

# re-exported for the agent tests
from sage.testing import PROBE_WORDS, answer, build_store, live_features, write_corpus  # noqa: F401

#: schema title (sent in OpenAI's response_format and Anthropic's tool input_schema) -> agent task
TASK_OF_TITLE = {
    "Hypotheses": "hypothesize",
    "Probes": "design",
    "Analysis": "analyze",
    "Conclusion": "conclude",
}
TASKS = ("hypothesize", "design", "analyze", "conclude")


def task_of_body(body: dict) -> str:
    """The agent task of an OpenAI chat-completions or Anthropic messages request body."""
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        schema = body["tools"][0]["input_schema"]
    return TASK_OF_TITLE[schema["title"]]


@pytest.fixture(scope="module", name="store")
def agent_store(tiny_subject, tmp_path_factory):
    """A tiny mined store; MI-vocabulary tables go to a private $SAGE_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGE_HOME", str(tmp_path_factory.mktemp("sage_home")))
        yield build_store(tiny_subject, tmp_path_factory.mktemp("agent_store"))
