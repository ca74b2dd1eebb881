"""Without Ray, `--ray` is one line that says how to install it; the pool's size follows the cluster."""

from __future__ import annotations

import sys

import pytest

from sage.cli.app import main
from sage.distributed.cluster import ClusterConfig, reason, require_ray, worker_options
from sage.errors import ConfigError


@pytest.mark.parametrize("command", ["batch", "mine", "compare"])
def test_ray_missing_says_how_to_install_it(command, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        require_ray()
    args = {"batch": ["--features", "1", "--out", str(tmp_path / "r.jsonl")], "compare": ["--features", "1"]}
    assert main([command, *args.get(command, []), "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray" in err[0] and ".[ray]" in err[0]


def test_workers_without_ray_is_refused(tmp_path, capsys):
    assert main(["batch", "--features", "1", "--out", str(tmp_path / "r.jsonl"), "--workers", "2"]) == 2
    assert "--workers and --gpus-per-worker need --ray" in capsys.readouterr().err


class FakeRay:
    def __init__(self, resources):
        self.resources = resources

    def cluster_resources(self):
        return self.resources


def test_one_worker_per_gpu_else_per_cpu(monkeypatch):
    monkeypatch.setenv("SAGE_HOME", "/shared/sage")
    n, opts = worker_options(FakeRay({"CPU": 32.0, "GPU": 4.0}), ClusterConfig())
    assert (n, opts["num_gpus"], opts["num_cpus"]) == (4, 1.0, 1.0)
    assert opts["runtime_env"]["env_vars"]["SAGE_HOME"] == "/shared/sage"
    n, opts = worker_options(FakeRay({"CPU": 8.0}), ClusterConfig(cpus_per_worker=2))
    assert (n, opts["num_gpus"]) == (4, 0.0)
    n, _ = worker_options(FakeRay({"CPU": 2.0}), ClusterConfig(workers=3))
    assert n == 3  # more than there is: allowed (an autoscaler may add nodes), said on stderr
    with pytest.raises(ConfigError):
        ClusterConfig(workers=0)


def test_a_ray_error_is_shortened_to_the_workers_own_reason():
    exc = RuntimeError(
        "The actor died because of an error raised in its creation task\n"
        '  File "x.py", line 3, in __init__\n'
        "sage.errors.ConfigError: the activation store /x is not mined here: run `sage mine` first"
    )
    assert reason(exc).startswith("sage.errors.ConfigError: the activation store /x is not mined")
