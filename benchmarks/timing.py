"""Clocks for the benchmarks: wall seconds and this process's CPU seconds, CUDA synchronised.

On a shared CPU (this project's 2-core machines run several jobs at once) wall time depends on what
else runs; the CPU seconds a process spent are what the job itself cost, so CPU runs print ratios of
both. On a GPU only wall time means anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sage.model.device import synchronize


def time_forward_encode(engine, batches: list) -> tuple[float, float]:
    """(wall, CPU) seconds of the limit the engine and mining are measured against: for each
    (input_ids [B, T], attention_mask [B, T] or None) batch, the early-exit forward up to the hook and
    the engine's sparse encode of its activations (`encode_sparse`, the fastest encode it has), nothing
    copied off the device and no bookkeeping. The first batch runs once untimed (a warm-up)."""

    def run(part) -> None:
        for ids, mask in part:
            engine.encode_sparse(engine.hidden(ids, mask))

    run(batches[:1])
    return timed(lambda: run(batches), engine.subject.device)


def timed(run: Callable[[], object], device: str) -> tuple[float, float]:
    """(wall, CPU) seconds of `run()`, with the device synchronised before each clock read."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu
