"""Batch explanation on Ray: a pool of actors, each opening its own `Session` (the subject, the store and
the explainer, loaded once), explains features; their lines stream back to the driver, which alone
writes the results file through the one batch loop (`sage.runs.explain_batch`, `sage.batch.run_batch`).

A worker that dies (killed, out of memory, its node lost) is restarted by Ray, which loads its session
again and retries the feature it was explaining once; should that fail too, the feature is recorded as
failed and `--resume` tries it again. Nothing a worker finished is lost: its line is on the driver's disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sage.batch import FEATURE_ERRORS, failure_record
from sage.distributed.cluster import (
    ActorPool,
    ClusterConfig,
    WorkerLost,
    WorkThreads,
    connect,
    reason,
    wait_ready,
    where,
    worker_options,
)
from sage.runs import Session, explanation_line
from sage.store.activation_store import ActivationStore


class ExplainWorker:
    """One Ray actor: a session opened once, explaining the features it is sent (`concurrency` at a
    time, on threads; the session's model lock keeps forward passes one at a time)."""

    def __init__(self, open_session: Callable[[], Session], concurrency: int = 1):
        self.run = WorkThreads(concurrency)
        self.session = open_session()
        if isinstance(self.session.store, ActivationStore):
            self.session.store.n_contexts  # read the store now, while starting, not on the first feature

    def ready(self) -> dict:
        return where()

    def explain(self, feature: int, explain_kwargs: dict) -> dict:
        try:
            return self.run(explanation_line, feature, self.session, **explain_kwargs)
        except FEATURE_ERRORS as exc:  # recorded as the driver would record them, without Ray's traceback
            return failure_record(feature, exc)


class RayExplainers(ActorPool):
    """A `sage.runs.FeatureExecutor` on Ray: `slots` = workers x concurrency features at once.

    open_session: builds a worker's session (picklable: e.g. `functools.partial(Session.open, ...,
    mine=False)`); it runs on every worker, and again when Ray restarts one. Use as a context manager,
    or call `close`, to end the workers.
    """

    def __init__(
        self,
        open_session: Callable[[], Session],
        cluster: ClusterConfig = ClusterConfig(),
        concurrency: int = 1,
    ):
        ray = self._ray = connect(cluster)
        n, options = worker_options(ray, cluster)
        actor = ray.remote(ExplainWorker).options(
            **options, max_concurrency=max(1, concurrency), max_task_retries=1
        )
        self.actors = [actor.remote(open_session, concurrency) for _ in range(n)]
        self.workers = wait_ready(ray, self.actors)
        self.slots = n * max(1, concurrency)
        self._free = [i for _ in range(max(1, concurrency)) for i in range(n)]
        self._dead: set[int] = set()
        self._cond = threading.Condition()

    def _take(self) -> int:
        with self._cond:
            while not self._free:
                if len(self._dead) == len(self.actors):
                    raise WorkerLost("every Ray worker is lost")
                self._cond.wait()
            return self._free.pop(0)

    def _give(self, i: int, dead: bool) -> None:
        with self._cond:
            if dead:
                self._dead.add(i)
                self._free = [j for j in self._free if j != i]
            else:
                self._free.append(i)
            self._cond.notify_all()

    def __call__(self, feature: int, **explain_kwargs) -> dict:
        ray, i = self._ray, self._take()
        dead = False
        try:
            return ray.get(self.actors[i].explain.remote(feature, explain_kwargs))
        except ray.exceptions.RayActorError as exc:
            dead = isinstance(exc, ray.exceptions.ActorDiedError)  # else only unavailable for a while
            raise WorkerLost(
                f"Ray worker {i} lost while explaining feature {feature}: {reason(exc)}"
            ) from exc
        finally:
            self._give(i, dead)

    def pids(self) -> list[int]:
        """Each worker's process id now (a restarted worker has a new one)."""
        return [w["pid"] for w in self._ray.get([a.ready.remote() for a in self.actors])]
