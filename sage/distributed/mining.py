"""Mining on Ray: workers (actors, each holding the subject once) mine shards of the corpus's context
stream (`sage.store.shards`) and send them back; the driver merges them exactly into the store
(`sage.store.merge`) and alone writes it.

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
    ClusterConfig,
    WorkerLost,
    connect,
    reason,
    wait_ready,
    where,
    worker_options,
)
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


def open_subject(model: str, sae: str, dtype: str | None) -> Subject:
    """A worker's subject, loaded quietly (what `sage mine --ray` sends each worker, partially applied)."""
    quiet_transformers()
    return load_subject(model, sae, dtype=dtype)


class MineWorker:
    """One Ray actor: the subject and the corpus opened once; mines the shards it is sent."""

    def __init__(
        self,
        open_subject: Callable[[], Subject],
        open_corpus: Callable[[], Corpus],
        cfg: StoreConfig,
        root: Path | None,
    ):
        self.subject, corpus, self.cfg = open_subject(), open_corpus(), cfg
        self.cursor = ContextCursor(corpus)
        self.root = shards_root(ActivationStore(self.subject, corpus, cfg, root=root))

    def ready(self) -> dict:
        return where()

    def mine(self, start: int, stop: int) -> Shard:
        return mine_shard(self.subject, self.cursor, self.cfg, self.root, start, stop)

    def clear(self) -> None:
        """Drop this node's shards (once the driver has written the merged store)."""
        shutil.rmtree(self.root, ignore_errors=True)


def mine_on_ray(
    store: ActivationStore,
    open_subject: Callable[[], Subject],
    open_corpus: Callable[[], Corpus],
    max_tokens: int | None = None,
    cluster: ClusterConfig = ClusterConfig(),
    progress: bool = True,
    shard_segments: int = SHARD_SEGMENTS,
) -> dict:
    """Take `store` to `max_tokens` tokens (None: the whole corpus) with Ray workers; the result equals
    `store.mine(max_tokens)` (tests/distributed). open_subject / open_corpus build the same subject and
    corpus as the store's on each worker (picklable: e.g. `functools.partial(load_subject, ...)`).
    Returns the store's meta."""
    ray = connect(cluster)
    n, options = worker_options(ray, cluster)
    actor = ray.remote(MineWorker).options(**options, max_task_retries=2)
    actors = [actor.remote(open_subject, open_corpus, store.cfg, store.dir.parent) for _ in range(n)]
    body = store.cfg.context_len - ENGINE.skip_positions
    bar = tqdm(
        total=max_tokens,
        initial=store.meta().get("tokens", 0),
        unit="tok",
        unit_scale=True,
        desc=f"mining on {n} Ray workers",
        disable=not progress,
        file=sys.stderr,
    )

    def mine_all(ranges: Iterator[tuple[int, int]]) -> Iterator[Shard]:
        free, running = list(actors), {}

        def hand_out() -> None:
            while free:
                r = next(ranges, None)
                if r is None:
                    return
                a = free.pop()
                running[a.mine.remote(*r)] = (a, r)

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
        wait_ready(ray, actors)
        meta = mine_sharded(
            store,
            max_tokens,
            n,
            mine_all,
            on_shard=lambda s: bar.update(s.contexts * body),
            shard_segments=shard_segments,
        )
        ray.get([a.clear.remote() for a in actors])
    finally:
        bar.close()
        for a in actors:
            ray.kill(a)
    return meta
