"""A compiled forward for long jobs of one batch shape (`sage mine --compile`): `torch.compile` of the
decoder blocks that the early-exit forward runs.

Eager bf16 spends part of the forward outside the matrix products (norms, rotary embeddings,
activation functions, casts), which inductor fuses; it also computes them in float32, so its results
are closer to a float32 forward than eager bf16's (docs/performance.md). On this project's 2-core CPUs
the gain is small (the forward ~15% faster, mining no faster over 129k tokens), so it is opt-in; it
is there for accelerators, where it has not been measured yet. Compiling costs seconds, so it starts
only once a job has run `warmup` batches of one shape, and only for that shape: short jobs and
odd-sized batches (the corpus's last) run the eager forward. If compiling fails (no C++ compiler, an
unsupported backend), a warning says so once and the job goes on eagerly.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from sage.model.hooks import HookSite, layout_for

#: batches of one shape a job runs eagerly before its blocks are compiled for that shape
COMPILE_AFTER = 20


def compiled_layers(model: nn.Module, site: HookSite) -> list[nn.Module]:
    """The decoder blocks whose whole forward runs before the hook reads its activations: every block
    below the hook's, and the hook's own block when the hook reads that block's output."""
    prefix = layout_for(model.config.model_type).layers
    layers = model.get_submodule(prefix)
    whole = site.module_name == f"{prefix}.{site.layer}"
    last = site.layer + 1 if whole and site.read == "output" else site.layer
    return list(layers[:last])


class _Switch:
    """Whether a batch runs the compiled blocks: the first block counts the batches of the one shape
    the compiled blocks serve, and every block asks."""

    def __init__(self, warmup: int):
        self.warmup, self.seen, self.shape, self.failed = warmup, 0, None, False

    def use_compiled(self, shape: tuple, count: bool) -> bool:
        if self.failed:
            return False
        if self.shape is None:
            self.shape = shape
        if shape != self.shape:
            return False
        self.seen += count
        return self.seen > self.warmup


@contextmanager
def compiled_forward(model: nn.Module, site: HookSite, warmup: int | None = None) -> Iterator[None]:
    """Within the block, the blocks before the hook switch to a `torch.compile`d forward once `warmup`
    (default `COMPILE_AFTER`) batches of the first batch shape have run; the eager forwards are back
    afterwards."""
    blocks = compiled_layers(model, site)
    switch = _Switch(COMPILE_AFTER if warmup is None else warmup)
    saved = []
    for i, block in enumerate(blocks):
        eager = block.forward
        twin = torch.compile(eager, dynamic=False)

        def forward(*args, _eager=eager, _twin=twin, _first=i == 0, **kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if not switch.use_compiled(tuple(hidden.shape), _first):
                return _eager(*args, **kwargs)
            try:
                return _twin(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001  (any compiler failure: go on eagerly, say so once)
                switch.failed = True
                print(
                    f"[sage] torch.compile failed, running eagerly: {type(exc).__name__}: {exc}"[:300],
                    file=sys.stderr,
                )
                return _eager(*args, **kwargs)

        saved.append((block, block.__dict__.get("forward")))
        block.forward = forward
    try:
        yield
    finally:
        for block, own in saved:
            if own is None:
                del block.forward
            else:
                block.forward = own
