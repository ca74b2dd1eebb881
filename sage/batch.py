"""One resumable batch loop over features, shared by `sage batch`, the baselines and evaluation.

Each finished feature becomes one flushed line of a JSONL file (`sage.io`), so an interrupted
batch loses at most the features in flight, and a re-run skips what is already done.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Container, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from sage.errors import ConfigError, ExplainerError, RemoteError
from sage.io import append_record, drop_torn_tail, open_append

#: failures of one feature that are recorded as an error line while the batch goes on; any other
#: exception (a bug, Ctrl-C) stops the batch
FEATURE_ERRORS: tuple[type[BaseException], ...] = (
    ExplainerError,
    RemoteError,
    ConfigError,
    ValueError,
    RuntimeError,
)


def failure_record(feature: int, exc: BaseException) -> dict:
    """The line that stands for a feature whose work failed: `{"feature": {"index": N}, "error": ...}`."""
    return {"feature": {"index": feature}, "error": f"{type(exc).__name__}: {exc}"}


def run_batch(
    features: Iterable[int],
    work: Callable[[int], dict],
    out: Path,
    *,
    desc: str,
    done: Callable[[Path], Container[Hashable]] | None = None,
    key: Callable[[int], Hashable] = lambda f: f,
    workers: int = 0,
    errors: tuple[type[BaseException], ...] = FEATURE_ERRORS,
    on_record: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> dict:
    """Run `work(feature)` for every feature, appending each returned record to the JSONL file
    `out` as it comes. With `done` (resuming), features whose `key(feature)` is in `done(out)`
    are skipped; `done` reads `out` after its torn last line is cut, so a record that lost its
    newline is redone rather than counted done and then cut.

    A failure of a kind in `errors` is recorded as `failure_record(feature, exc)`; pass `errors=()`
    to let every exception stop the batch. `workers=0` runs the features one after the other in
    this thread; `workers=N` runs them on N threads with at most N in flight, so that an interrupt
    (Ctrl-C) starts no further feature. Records are written (and `on_record` called) in this thread,
    in the order they finish. Returns counts: requested, skipped, done, failed (a record with an
    "error" key counts as failed).
    """
    from tqdm import tqdm

    features = list(features)
    drop_torn_tail(out)
    skip = done(Path(out)) if done is not None else ()
    todo = [f for f in features if key(f) not in skip]
    counts = {"requested": len(features), "skipped": len(features) - len(todo), "done": 0, "failed": 0}

    def one(f: int) -> dict:
        try:
            return work(f)
        except errors as exc:
            return failure_record(f, exc)

    bar = tqdm(total=len(todo), desc=desc, unit="feature", disable=not progress, file=sys.stderr)
    with open_append(out) as fh:

        def record(rec: dict) -> None:
            append_record(fh, rec)
            counts["failed" if "error" in rec else "done"] += 1
            if on_record is not None:
                on_record(rec)
            bar.update(1)

        if workers <= 0:
            for f in todo:
                record(one(f))
        else:
            queue = iter(todo)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                running = {pool.submit(one, f) for f in itertools.islice(queue, workers)}
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        record(fut.result())
                    running |= {pool.submit(one, f) for f in itertools.islice(queue, len(finished))}
    bar.close()
    return counts
