"""`sage batch --ray`: Ray workers give the same explanations as one process, and a worker killed mid-run
costs nothing (Ray restarts it and retries its feature; every feature ends with one good line)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from functools import partial

import pytest
import torch

from sage.distributed.cluster import ClusterConfig
from sage.runs import explain_batch
from sage.testing import build_store, live_features, open_session


@pytest.fixture(scope="module")
def opener(tiny_subject, tiny_model_dir, tiny_sae_dir, tmp_path_factory):
    """What each worker runs to open its session; $SAGE_HOME (the MI-vocabulary cache) is private."""
    root = tmp_path_factory.mktemp("ray_store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGE_HOME", str(tmp_path_factory.mktemp("sage_home")))
        build_store(tiny_subject, root)
        yield partial(open_session, tiny_model_dir, tiny_sae_dir, root)


@pytest.fixture(scope="module")
def driver(opener):
    return opener()


@pytest.fixture(scope="module")
def features(driver):
    return live_features(driver.store, 6)


@pytest.fixture(scope="module")
def sequential(driver, features, tmp_path_factory):
    """One process, no Ray: feature -> explanation (this also fills the MI-vocabulary cache). On one
    torch thread, as each worker runs (Ray gives it its 1 CPU): other thread counts sum floats in
    another order, and near-ties among the offline explainer's tokens can then come out in another order."""
    out = tmp_path_factory.mktemp("seq") / "r.jsonl"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = explain_batch(features, out, session=driver, progress=False, max_rounds=1)
    finally:
        torch.set_num_threads(threads)
    assert summary["done"] == len(features)
    return by_feature(out)


@pytest.fixture(scope="module")
def pool(ray_local, opener, sequential):
    from sage.distributed.batch import RayExplainers

    with RayExplainers(opener, ClusterConfig(workers=2), concurrency=1) as pool:
        yield pool


def by_feature(path) -> dict[int, dict]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    good = [r for r in lines if "error" not in r]
    assert len(good) == len(lines), [r["error"] for r in lines if "error" in r]
    assert len({r["feature"]["index"] for r in good}) == len(good), "a feature has two lines"
    return {r["feature"]["index"]: {k: v for k, v in r.items() if k != "timings"} for r in good}


def test_ray_workers_explain_as_one_process_does(pool, driver, features, sequential, tmp_path):
    out = tmp_path / "ray.jsonl"
    summary = explain_batch(features, out, session=driver, executor=pool, progress=False, max_rounds=1)
    assert (summary["done"], summary["failed"]) == (len(features), 0)
    assert by_feature(out) == sequential
    assert len({w["pid"] for w in pool.workers}) == 2 and os.getpid() not in pool.pids()


def test_a_worker_killed_mid_run_loses_nothing(pool, driver, features, sequential, tmp_path):
    out, result = tmp_path / "killed.jsonl", {}
    before = pool.pids()

    def run():
        kwargs = {"session": driver, "executor": pool, "progress": False, "max_rounds": 1}
        result.update(explain_batch(features, out, **kwargs))

    batch = threading.Thread(target=run)
    batch.start()
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(before[1], signal.SIGKILL)  # the second worker dies with a feature in flight (or about to be)
    batch.join(timeout=120)
    assert not batch.is_alive()
    assert (result["done"], result["failed"]) == (len(features), 0)
    assert by_feature(out) == sequential
    after = pool.pids()
    assert after[0] == before[0] and after[1] != before[1]  # Ray restarted the killed worker


def test_compare_hands_its_sage_method_to_the_workers(pool, driver, features, sequential, tmp_path):
    from sage.evaluation.compare import run_compare

    out, picked = tmp_path / "cmp", features[:2]
    kwargs = {"methods": ("sage",), "groups": ("predictive",), "progress": False}
    run_compare(picked, out, driver, explain_kwargs={"max_rounds": 1}, executor=pool, **kwargs)
    assert by_feature(out / "explanations_sage.jsonl") == {f: sequential[f] for f in picked}
    assert len((out / "scores.jsonl").read_text().splitlines()) == len(picked)  # scored on the driver
