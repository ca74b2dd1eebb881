"""Mining on Ray: workers (actors, each holding the subject once) mine shards of the corpus's context
stream (`sage.store.shards`) and send them back; the driver merges them exactly into the store
(`MiningState.merge`) and alone writes it.

Each worker keeps its shard under its own `$SAGE_HOME` store folder (`shards/`), saved every segment,
so a worker Ray restarts, or a re-run after the driver died, resumes a shard where it stopped.
Shards are handed out in increasing order, one per free worker, so each worker reads the corpus
forward once (`ContextCursor`); with no token budget, handing out stops at the first shard the corpus
ends in.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm import tqdm

from sage.data.corpus import Corpus
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
from sage.errors import ConfigError
from sage.model.engine_config import ENGINE
from sage.model.subject import Subject, load_subject, quiet_transformers
from sage.store.activation_store import ActivationStore, StoreConfig
from sage.store.shards import (
    SHARD_SEGMENTS,
    ContextCursor,
    Shard,
    mine_shard,
    mine_sharded,
    shards_root,
)


def open_subject(model: str, sae: str, dtype: str | None, device: str | None = None) -> Subject:
    """A worker's subject, loaded quietly (what `sage mine --ray` sends each worker, partially applied);
    device None / auto: the GPU Ray gave the worker, if any."""
    quiet_transformers()
    return load_subject(model, sae, dtype=dtype, device=device)


class MineWorker:
    """One Ray actor: the subject and the corpus opened once; mines the shards it is sent."""

    def __init__(self, open_subject: Callable[[], Subject], open_corpus: Callable[[], Corpus]):
        self.run = WorkThreads()
        self.subject, self.corpus = open_subject(), open_corpus()
        self.cursor = ContextCursor(self.corpus)

    def ready(self) -> dict:
        """Where it runs, and what it mines: a driver refuses workers whose subject or corpus differ
        from its store's (another model or corpus file in a node's cache would break the merge)."""
        return {**where(), "subject": self.subject.fingerprint(), "corpus": self.corpus.fingerprint}

    def mine(self, cfg: StoreConfig, shards: Path, start: int, stop: int) -> Shard:
        return self.run(mine_shard, self.subject, self.cursor, cfg, shards, start, stop)

    def clear(self, shards: Path) -> None:
        """Drop this node's shards (once the driver has written the merged store)."""
        shutil.rmtree(shards, ignore_errors=True)


class RayMiners(ActorPool):
    """A pool of Ray workers that mine shards of one subject and corpus; `mine` takes a store (of that
    subject and corpus) to a token budget. Use as a context manager, or call `close`.

    open_subject / open_corpus: build the subject and the corpus on each worker (picklable, e.g.
    `functools.partial(open_subject, model, sae, dtype)`), again when Ray restarts one.
    """

    def __init__(
        self,
        open_subject: Callable[[], Subject],
        open_corpus: Callable[[], Corpus],
        cluster: ClusterConfig = ClusterConfig(),
    ):
        ray = self._ray = connect(cluster)
        n, options = worker_options(ray, cluster)
        actor = ray.remote(MineWorker).options(**options, max_task_retries=2)
        self.actors = [actor.remote(open_subject, open_corpus) for _ in range(n)]
        self.workers = wait_ready(ray, self.actors)

    def mine(
        self,
        store: ActivationStore,
        max_tokens: int | None = None,
        progress: bool = True,
        shard_segments: int = SHARD_SEGMENTS,
    ) -> dict:
        """Take `store` to `max_tokens` tokens (None: the whole corpus); the result equals
        `store.mine(max_tokens)` (tests/distributed). Returns the store's meta."""
        want = {"subject": store.subject.fingerprint(), "corpus": store.corpus.fingerprint}
        for w in self.workers:
            if any(w[k] != v for k, v in want.items()):
                raise ConfigError(
                    f"the Ray worker on {w['host']} holds another subject or corpus than the store "
                    f"{store.dir} (a different model, SAE or corpus file in that node's $SAGE_HOME)"
                )
        ray, shards = self._ray, shards_root(store)
        body = store.cfg.context_len - ENGINE.skip_positions
        bar = tqdm(
            total=max_tokens,
            initial=store.meta().get("tokens", 0),
            unit="tok",
            unit_scale=True,
            desc=f"mining on {len(self.actors)} Ray workers",
            disable=not progress,
            file=sys.stderr,
        )

        def mine_all(ranges: Iterator[tuple[int, int]]) -> Iterator[Shard]:
            free, running = list(self.actors), {}

            def hand_out() -> None:
                while free:
                    r = next(ranges, None)
                    if r is None:
                        return
                    a = free.pop()
                    running[a.mine.remote(store.cfg, shards, *r)] = (a, r)

            hand_out()
            while running:
                [ref], _ = ray.wait(list(running), num_returns=1)
                a, r = running.pop(ref)
                try:
                    shard = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    raise WorkerLost(
                        f"a Ray worker died mining contexts {r[0]}-{r[1]} and was not brought back "
                        f"({reason(exc)}); re-run to resume: finished shards are kept"
                    ) from exc
                free.append(a)
                yield shard  # merged (and the end of the corpus noticed) before more shards are handed out
                hand_out()

        try:
            meta = mine_sharded(
                store,
                max_tokens,
                len(self.actors),
                mine_all,
                on_shard=lambda s: bar.update(s.contexts * body),
                shard_segments=shard_segments,
            )
        finally:
            bar.close()
        ray.get([a.clear.remote(shards) for a in self.actors])
        return meta
