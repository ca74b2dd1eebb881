"""Connecting to Ray and sizing a pool of workers (actors) on it."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

from sage.errors import ConfigError, SageError

#: how to get Ray, said by every `--ray` that finds it missing
INSTALL_HINT = "pip install -e '.[ray]' (or pip install 'ray>=2.9')"
#: the driver's environment variables that workers get too (besides every SAGE_*): keys and caches
PASSED_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "NEURONPEDIA_API_KEY",
    "HF_HOME",
    "HF_TOKEN",
    "XDG_CACHE_HOME",
    "TOKENIZERS_PARALLELISM",
)


class WorkerLost(SageError, RuntimeError):
    """A Ray worker died and Ray's restarts and retries did not bring its task back (a batch records the
    feature as failed and `--resume` tries it again; mining stops, and a re-run resumes it)."""


class ActorPool:
    """A pool of Ray actors (`self.actors`, started through `self._ray`) that a `with` block or
    `close()` kills."""

    actors: list
    _ray: object

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class ClusterConfig:
    """Where the workers run and how many there are."""

    #: None: start Ray on this machine; "auto": the cluster `ray start` joined this machine to;
    #: "ray://HOST:10001": a remote cluster through Ray Client
    address: str | None = None
    #: workers (actors); None: one per GPU when the cluster has GPUs, else one per `cpus_per_worker` CPUs
    workers: int | None = None
    #: CPUs each worker reserves (Ray sets its torch threads to this)
    cpus_per_worker: float = 1.0
    #: GPUs each worker reserves; None: 1 when the cluster has GPUs, else 0
    gpus_per_worker: float | None = None
    #: times Ray restarts a worker that died (its subject is loaded again) before giving up on it
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {self.workers}")
        if self.cpus_per_worker <= 0 or (self.gpus_per_worker or 0) < 0 or self.max_restarts < 0:
            raise ConfigError("CPUs per worker must be > 0, GPUs per worker and restarts >= 0")


def require_ray():
    """The `ray` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray, an optional extra: {INSTALL_HINT}") from exc
    return ray


def connect(cfg: ClusterConfig):
    """Ray, initialised (once per process: a second call reuses the connection)."""
    ray = require_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=cfg.address, include_dashboard=False, log_to_driver=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"cannot connect to Ray at {cfg.address or 'a new local instance'}: {exc}"
            ) from exc
    return ray


def worker_env() -> dict[str, str]:
    """The environment workers start with: the driver's SAGE_* variables and `PASSED_ENV`."""
    return {k: v for k, v in os.environ.items() if k.startswith("SAGE_") or k in PASSED_ENV}


def worker_options(ray, cfg: ClusterConfig) -> tuple[int, dict]:
    """(number of workers, Ray actor options of each) for the cluster as it is now. Asking for more than
    the cluster has is allowed (an autoscaling cluster adds nodes) but said on stderr, since the
    workers wait until resources appear."""
    have = ray.cluster_resources()
    gpus, cpus = have.get("GPU", 0.0), have.get("CPU", 0.0)
    per_gpu = cfg.gpus_per_worker if cfg.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if cfg.workers is not None:
        n = cfg.workers
    elif per_gpu:
        n = max(1, int(gpus // per_gpu))
    else:
        n = max(1, int(cpus // cfg.cpus_per_worker))
    if n * cfg.cpus_per_worker > cpus or n * per_gpu > gpus:
        print(
            f"sage: {n} Ray workers need {n * cfg.cpus_per_worker:g} CPUs and {n * per_gpu:g} GPUs; the "
            f"cluster has {cpus:g} and {gpus:g} now, so some wait for more (an autoscaler, `ray start`)",
            file=sys.stderr,
        )
    options = {
        "num_cpus": cfg.cpus_per_worker,
        "num_gpus": per_gpu,
        "max_restarts": cfg.max_restarts,
        "runtime_env": {"env_vars": worker_env()},
    }
    return n, options


class WorkThreads:
    """Runs a worker's work on its own threads, not on the thread Ray runs a task on (for a plain actor,
    the process's main thread). Measured here (2 cores, bf16 SmolLM2, a [32, 64] batch): the same
    forward pass takes 4-7 s on a process's main thread and 2.4-3 s on any other thread, in or out of
    Ray, whatever the order; `benchmarks/scale.py` shows the effect on whole explanations."""

    def __init__(self, n: int = 1):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="sage-worker")

    def __call__(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()


def where() -> dict:
    """This worker's host, process id and torch threads (Ray sets them to the CPUs it reserved)."""
    import torch

    return {"host": socket.gethostname(), "pid": os.getpid(), "threads": torch.get_num_threads()}


def wait_ready(ray, actors: list) -> list[dict]:
    """Block until every actor has loaded what it holds; a worker that cannot start is a ConfigError
    with the worker's own reason (a missing store, a bad model path)."""
    try:
        return ray.get([a.ready.remote() for a in actors])
    except ray.exceptions.RayActorError as exc:
        raise ConfigError(f"a Ray worker could not start: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """The last line of a Ray error's message (the worker's own exception), not Ray's whole traceback."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    cause = [ln for ln in lines if "Error:" in ln and not ln.startswith("File ")]
    return (cause or lines or [type(exc).__name__])[-1][:500]
