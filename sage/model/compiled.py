"""Compiled decoder blocks for long runs of one batch shape (mining).

On this project's reference CPU (2 cores, avx512_bf16), `torch.compile` of the blocks the early-exit
forward runs, with inductor's weight freezing (bf16 weights pre-packed for oneDNN, elementwise ops
fused), cuts the forward's CPU time by ~40%; compiling costs ~20-50 s. That pays off only on a long
run of a fixed shape, so mining compiles for its own duration and restores eager execution after:
the agent's probes come in ever-changing shapes, and each new shape would recompile.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def blocks_up_to_hook(model: nn.Module, module_name: str) -> list[nn.Module]:
    """The decoder blocks (members of a ModuleList) up to and including the one holding `module_name`;
    [] when the hook is not inside a block list."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and module_name.startswith(f"{name}."):
            index = module_name[len(name) + 1 :].split(".")[0]
            if index.isdigit():
                return list(mod[: int(index) + 1])
    return []


@contextmanager
def compiled_blocks(model: nn.Module, module_name: str, enabled: bool = True):
    """Run the blocks before the hook compiled inside the `with` block; yields whether they are.

    A batch of another shape (a segment's last, shorter batch) should run under `eager()` instead of
    paying for a recompile.
    """
    blocks = blocks_up_to_hook(model, module_name) if enabled else []
    if not blocks:
        yield False
        return
    import torch._dynamo.config as dynamo_config

    # every block shares one forward code object: each needs its own cache entry
    dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, 2 * len(blocks))
    for block in blocks:
        block.compile(dynamic=False, options={"freezing": True})
    try:
        yield True
    finally:
        for block in blocks:
            block._compiled_call_impl = None  # back to eager (what nn.Module.compile set)


def eager():
    """Compiled modules run eagerly inside this block (no recompile for an odd shape)."""
    return torch.compiler.set_stance("force_eager")
