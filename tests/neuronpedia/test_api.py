"""The Neuronpedia client and source against the replay server: seeding, probing, caching, back-off,
exhausted retries, malformed answers, a missing key."""

from __future__ import annotations

import json

import pytest

from sage.errors import RemoteError
from sage.neuronpedia.api import NeuronpediaClient, NeuronpediaConfig, NotFound
from sage.neuronpedia.source import (
    NeuronpediaStore,
    NeuronpediaSubject,
    RemoteSourceConfig,
    open_source,
    with_sink,
)
from sage.store.source import ActivationSource
from tests.neuronpedia_replay import FIXTURES, Fault, rule_tokens, serve

SPEC = "neuronpedia:gemma-2-2b/20-gemmascope-res-16k"
MODEL, SOURCE = "gemma-2-2b", "20-gemmascope-res-16k"
#: no waiting between attempts in tests
FAST = NeuronpediaConfig(max_attempts=3, initial_wait=0.0, max_wait=0.0, timeout=5.0)
FIXTURE_4213 = json.loads((FIXTURES / "features" / "4213.json").read_text())


def client(srv, tmp_path, **kw) -> NeuronpediaClient:
    return NeuronpediaClient(srv.url, settings=kw.pop("settings", FAST), cache_dir=tmp_path / "cache", **kw)


def test_seed_data_comes_from_the_feature_endpoint(tmp_path):
    with serve() as srv:
        store = open_source(SPEC, client(srv, tmp_path))
        assert isinstance(store, ActivationSource)
        stats = store.feature_stats(4213)
        top = store.top(4213, 5)
        quant = store.quantile_samples(4213, 5, 2, exclude_top=16)
        info = store.subject.info()
    assert stats.max_activation == FIXTURE_4213["maxActApprox"]
    assert stats.frequency == FIXTURE_4213["frac_nonzero"]
    # the contexts are the server's records, strongest first, values untouched
    recs = FIXTURE_4213["activations"]
    assert [c.tokens for c in top] == [r["tokens"] for r in recs[:5]]
    assert [c.acts for c in top] == [r["values"] for r in recs[:5]]
    assert top[0].tokens[0] == "<bos>" and top[0].max_act == 11.2
    assert {c.context_id for c in quant}.isdisjoint(c.context_id for c in store.top(4213, 16))
    assert len(quant) == 10 and [c.quantile for c in quant] == sorted(c.quantile for c in quant)
    assert info["d_sae"] == 16384 and info["hook_name"] == "blocks.20.hook_resid_post"
    assert srv.requests[0][:2] == ("GET", f"/api/feature/{MODEL}/{SOURCE}/4213")


def test_probes_go_through_the_activation_endpoint(tmp_path):
    text = "The puppy slept while the cat watched."
    with serve() as srv:
        store = open_source(SPEC, client(srv, tmp_path))
        ta = store.engine.run([text], [4213])[0]
    method, path, body = srv.requests[-1]
    assert (method, path) == ("POST", "/api/activation/new")
    assert body == {
        "feature": {"modelId": MODEL, "source": SOURCE, "index": "4213"},
        "customText": [text],
        "ignoreBos": False,
    }
    assert ta.tokens == rule_tokens(text)  # the server's tokens: no local tokenizer
    assert ta.column(4213).tolist()[ta.tokens.index(" puppy")] == pytest.approx(9.6)
    assert max(ta.column(4213).tolist()[:1]) == 0.0


def test_negatives_are_neighbour_contexts_where_the_feature_stays_silent(tmp_path):
    with serve() as srv:
        # a pool larger than the three neighbours' 78 contexts: the missing ones (404) are skipped
        subject = NeuronpediaSubject(client(srv, tmp_path), MODEL, SOURCE)
        store = NeuronpediaStore(subject, RemoteSourceConfig(negative_pool=100))
        neg = store.random_negatives(4213, 10)
        again = store.random_negatives(4213, 10)
    assert len(neg) == 10 and [c.context_id for c in neg] == [c.context_id for c in again]
    assert all(max(c.acts) == 0.0 for c in neg)
    probed = {t for m, _, b in srv.requests if m == "POST" for t in b["customText"]}
    assert {c.text for c in neg} <= probed  # each negative's values came from a probe of this feature
    asked = [p.rsplit("/", 1)[1] for m, p, _ in srv.requests if m == "GET"]
    assert asked == ["4213", "4214", "4212", "4215", "4211", "4216", "4210"]
    assert len(store._negatives(4213)) == 78 - 26  # 4212's 26 contexts mention a dog: 4213 fires there


def test_answers_are_cached_on_disk(tmp_path):
    with serve() as srv:
        first = open_source(SPEC, client(srv, tmp_path))
        first.top(4213, 3)
        first.engine.run(["a dog", "a cat"], [4213])
        n = len(srv.requests)
        second = open_source(SPEC, client(srv, tmp_path))
        assert second.top(4213, 3)[0].acts == first.top(4213, 3)[0].acts
        second.engine.run(["a cat", "a dog", "a hound"], [4213])
    assert len(srv.requests) == n + 1  # only "a hound" was new
    assert srv.requests[-1][2]["customText"] == ["a hound"]


def test_rate_limit_then_success(tmp_path):
    script = [Fault(429, '{"message": "slow down"}', {"retry-after": "0"}), Fault(503)]
    with serve(script=script) as srv:
        c = client(srv, tmp_path)
        rec = c.feature(MODEL, SOURCE, 4213)
    assert rec["index"] == "4213" and c.requests == 3


def test_exhausted_retries_fail_clearly_and_cache_nothing(tmp_path):
    with serve(script=lambda method, path, n: Fault(502) if method == "POST" else None) as srv:
        c = client(srv, tmp_path)
        with pytest.raises(RemoteError, match="gave up after 3 attempts.*HTTP 502"):
            c.activations(MODEL, SOURCE, 4213, ["a dog"])
    assert not (tmp_path / "cache" / "activation").exists()


def test_timeouts_are_retried(tmp_path, monkeypatch):
    import httpx

    calls = []

    def slow(*args, **kwargs):
        calls.append(1)
        raise httpx.ReadTimeout("slow")

    with serve() as srv:
        c = client(srv, tmp_path)
        monkeypatch.setattr(c._http, "request", slow)
        with pytest.raises(RemoteError, match="timed out"):
            c.feature(MODEL, SOURCE, 4213)
    assert len(calls) == FAST.max_attempts


@pytest.mark.parametrize(
    "fault, message",
    [
        (Fault(200, '{"tokens": ["a"'), "not valid JSON"),
        (Fault(200, '{"modelId": "gemma-2-2b", "layer": "x", "index": "1"}'), "activations.*required"),
        (
            Fault(200, json.dumps({**FIXTURE_4213, "activations": [{"tokens": ["a"], "values": ["x"]}]})),
            "0/values/0",
        ),
    ],
)
def test_malformed_answers_are_clear_errors(tmp_path, fault, message):
    with serve(script=[fault]) as srv:
        c = client(srv, tmp_path)
        with pytest.raises(RemoteError, match=message):
            c.feature(MODEL, SOURCE, 4213)
    assert not (tmp_path / "cache" / "feature").exists()


def test_activation_answer_with_mismatched_lengths_is_an_error(tmp_path):
    bad = json.dumps([{"tokens": ["<bos>", " dog"], "values": [0.0]}])
    with serve(script=[Fault(200, bad)]) as srv, pytest.raises(RemoteError, match="2 tokens but 1 values"):
        client(srv, tmp_path).activations(MODEL, SOURCE, 4213, ["dog"])


def test_missing_key_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NEURONPEDIA_API_KEY", raising=False)
    with serve(api_key="np-secret") as srv:
        with pytest.raises(RemoteError, match="HTTP 401.*set NEURONPEDIA_API_KEY"):
            client(srv, tmp_path).feature(MODEL, SOURCE, 4213)
        with pytest.raises(RemoteError, match="was refused"):
            client(srv, tmp_path, api_key="wrong").feature(MODEL, SOURCE, 4213)
        monkeypatch.setenv("NEURONPEDIA_API_KEY", "np-secret")
        assert client(srv, tmp_path).feature(MODEL, SOURCE, 4213)["index"] == "4213"


def test_unknown_feature_is_not_found(tmp_path):
    with serve() as srv, pytest.raises(NotFound, match="HTTP 404"):
        client(srv, tmp_path).feature(MODEL, SOURCE, 99)


def test_sink_placeholder_only_where_there_is_no_bos():
    assert with_sink(["<bos>", " a"], [5.0, 1.0]) == (["<bos>", " a"], [5.0, 1.0])
    assert with_sink([" a", " b"], [1.0, 2.0]) == (["", " a", " b"], [0.0, 1.0, 2.0])


def test_token_search_finds_server_contexts_holding_a_token(tmp_path):
    with serve() as srv:
        store = open_source(SPEC, client(srv, tmp_path))
        store.top(4213, 1)  # loads the feature's records: the contexts the search can find
        ids = store.subject.tokenizer(" hound", add_special_tokens=False)["input_ids"]
        found = store.search(ids, limit=50)
        unknown = store.search(store.subject.tokenizer(" zebra")["input_ids"])
    texts = list(store.iter_texts(found))
    assert len(texts) == 4 and all(" hound" in t for t in texts)  # the fixture has 4 hound contexts
    assert unknown == []
    assert store.subject.tokenizer.decode(ids) == " hound"
