"""Shared pieces of the agent tests and the token benchmark: a tiny mined store, and a
scripted explainer that answers every task of the loop with valid JSON.

The scripted answers keep one hypothesis open forever, so a run lasts exactly
`max_rounds` rounds (no early convergence), and give every probe a fresh text.
"""

from __future__ import annotations

import pytest

from pathlib import Path

from tests.fixtures import TEXTS

#: schema title (sent in OpenAI's response_format and Anthropic's tool input_schema) -> agent task
TASK_OF_TITLE = {"Hypotheses": "hypothesize", "Probes": "design", "Analysis": "analyze", "Conclusion": "conclude"}
TASKS = ("hypothesize", "design", "analyze", "conclude")
PROBE_WORDS = ["cat", "Paris", "42", "gold", "Berlin", "philosopher", "table", "king"]


def write_corpus(path: Path) -> Path:
    """A small corpus of distinct documents built from the fixture texts."""
    path.write_text("\n\n".join(f"{t} Item {i}." for i, t in enumerate(TEXTS * 5)), encoding="utf-8")
    return path


def build_store(subject, root: Path):
    """Mine a tiny activation store for `subject` under `root` (about a second)."""
    from sage.data.corpus import from_paths
    from sage.store.activation_store import ActivationStore, StoreConfig

    root.mkdir(parents=True, exist_ok=True)
    corpus = from_paths([write_corpus(root / "corpus.txt")], name="tiny")
    store = ActivationStore(subject, corpus, StoreConfig(context_len=16, top_k=8, segment_contexts=64),
                            root=root / "store")
    store.mine(progress=False)
    return store


def live_features(store, n: int) -> list[int]:
    """The `n` most frequently firing features (they have top contexts to seed from)."""
    d_sae = store.subject.d_sae
    return sorted(range(d_sae), key=lambda f: -store.feature_stats(f).frequency)[:n]


def task_of_body(body: dict) -> str:
    """The agent task of an OpenAI chat-completions or Anthropic messages request body."""
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        schema = body["tools"][0]["input_schema"]
    return TASK_OF_TITLE[schema["title"]]


def answer(task: str, n: int) -> dict:
    """A schema-valid answer for `task`; `n` (the call's index) makes probe texts unique per call."""
    if task == "hypothesize":
        return {"hypotheses": [
            {"text": "Fires on the token 'cat'.", "kind": "lexical", "role": "primary",
             "predicate": {"type": "token_set", "tokens": ["cat"]}},
            {"text": "Fires on digits.", "kind": "syntactic-structural", "role": "alternative",
             "predicate": {"type": "structural", "property": "digit"}},
            {"text": "Fires on word-initial tokens (control).", "kind": "syntactic-structural", "role": "control",
             "predicate": {"type": "structural", "property": "word_start"}},
        ]}
    if task == "design":
        word = PROBE_WORDS[n % len(PROBE_WORDS)]
        return {"probes": [
            {"hypothesis_id": "H1", "text": f"Call {n}: the {word} sat on the mat.", "purpose": "positive",
             "expect": "high"},
            {"hypothesis_id": "H1", "text": f"Call {n}: the dog sat on the mat.", "purpose": "minimal_pair",
             "expect": "low", "pair_of": 0},
            {"hypothesis_id": "H2", "text": f"Call {n}: there were {n + 7} people.", "purpose": "positive",
             "expect": "high"},
        ]}
    if task == "analyze":  # H1 stays open, so the loop never converges before max_rounds
        return {"updates": [
            {"hypothesis_id": "H1", "status": "open", "note": "mixed evidence"},
            {"hypothesis_id": "H2", "status": "refined", "new_text": "Fires on digits after a space.",
             "new_predicate": {"type": "structural", "property": "digit"}, "note": "narrowed"},
            {"hypothesis_id": "H3", "status": "refuted", "note": "control does not fire"},
        ]}
    if task == "conclude":
        return {"labels": ["scripted: the token 'cat'"],
                "description": "Fires on 'cat' in the scripted probes; the control was refuted.",
                "best_hypothesis_ids": ["H1"]}
    raise ValueError(f"unknown task {task!r}")



@pytest.fixture(scope="module", name="store")
def agent_store(tiny_subject, tmp_path_factory):
    """A tiny mined store; MI-vocabulary tables go to a private $SAGE_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGE_HOME", str(tmp_path_factory.mktemp("sage_home")))
        yield build_store(tiny_subject, tmp_path_factory.mktemp("agent_store"))
