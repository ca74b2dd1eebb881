"""Map an SAE's hook name onto the module of a Hugging Face causal LM.

sae-lens stores hook names in TransformerLens naming (`blocks.12.hook_resid_post`)
and sometimes the HF module name too (`hf_hook_name`, e.g. `model.layers.12`).
This module turns either into a `HookSite`: which HF module to hook, whether to
read its input (pre-hook) or output, and which tuple element holds the tensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from sage.errors import ConfigError

TL_HOOK_RE = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_mlp_out|hook_attn_out)$")
SUPPORTED_HOOK_TYPES = ("hook_resid_pre", "hook_resid_post", "hook_mlp_out", "hook_attn_out")


@dataclass(frozen=True)
class HookSite:
    """Where to read activations in a HF model.

    module_name: dotted name of the module (as in `model.named_modules()`).
    read: "input" (first positional input, via a forward pre-hook) or "output".
    layer: index of the decoder block that contains the site.
    hook_name: the TransformerLens-style name the SAE was trained at.
    """

    module_name: str
    read: str
    layer: int
    hook_name: str


@dataclass(frozen=True)
class _ArchLayout:
    layers: str  # prefix of the decoder-block list
    attn_out: str  # submodule of a block whose output is TL's hook_attn_out
    mlp_out: str  # submodule of a block whose output is TL's hook_mlp_out


# Gemma-2 normalises attention / MLP outputs before adding them to the residual,
# and TransformerLens's hook_attn_out / hook_mlp_out sit after those norms.
_LAYOUTS: dict[str, _ArchLayout] = {
    "llama": _ArchLayout("model.layers", "self_attn", "mlp"),
    "mistral": _ArchLayout("model.layers", "self_attn", "mlp"),
    "qwen2": _ArchLayout("model.layers", "self_attn", "mlp"),
    "qwen3": _ArchLayout("model.layers", "self_attn", "mlp"),
    "gemma": _ArchLayout("model.layers", "self_attn", "mlp"),
    "gemma2": _ArchLayout("model.layers", "post_attention_layernorm", "post_feedforward_layernorm"),
    "gemma3_text": _ArchLayout("model.layers", "post_attention_layernorm", "post_feedforward_layernorm"),
    "gpt2": _ArchLayout("transformer.h", "attn", "mlp"),
}


def layout_for(model_type: str) -> _ArchLayout:
    try:
        return _LAYOUTS[model_type]
    except KeyError as exc:
        raise ConfigError(
            f"no hook mapping for model_type {model_type!r}; supported: {', '.join(sorted(_LAYOUTS))}. "
            "Pass an SAE whose config has `hf_hook_name` (a HF module name) to use another architecture."
        ) from exc


def resolve_hook(model: nn.Module, hook_name: str | None, hf_hook_name: str | None = None) -> HookSite:
    """Resolve an SAE's hook into a `HookSite` on `model`, or raise ConfigError.

    `hook_name` (TransformerLens naming) is preferred because it says whether the
    input or the output of a block is meant; `hf_hook_name` is used when the TL
    name is absent or not one we map.
    """
    model_type = getattr(model.config, "model_type", "?")
    modules = dict(model.named_modules())
    m = TL_HOOK_RE.match(hook_name or "")
    if m:
        layer, kind = int(m.group(1)), m.group(2)
        lay = layout_for(model_type)
        n_layers = len(_get(modules, lay.layers, hook_name))
        if layer >= n_layers:
            raise ConfigError(
                f"SAE hook {hook_name!r} names layer {layer}, "
                f"but the model has {n_layers} layers (0-{n_layers - 1})"
            )
        block = f"{lay.layers}.{layer}"
        if kind == "hook_resid_pre":
            site = HookSite(block, "input", layer, hook_name)
        elif kind == "hook_resid_post":
            site = HookSite(block, "output", layer, hook_name)
        elif kind == "hook_attn_out":
            site = HookSite(f"{block}.{lay.attn_out}", "output", layer, hook_name)
        else:
            site = HookSite(f"{block}.{lay.mlp_out}", "output", layer, hook_name)
        _get(modules, site.module_name, hook_name)
        return site
    if hf_hook_name:
        _get(modules, hf_hook_name, hf_hook_name)
        layer_m = re.search(r"\.(\d+)(\.|$)", hf_hook_name)
        layer = int(layer_m.group(1)) if layer_m else 0
        tl = hook_name or f"blocks.{layer}.hook_resid_post"
        return HookSite(hf_hook_name, "output", layer, tl)
    raise ConfigError(
        f"unknown hook {hook_name!r}: expected blocks.N.{{{'|'.join(SUPPORTED_HOOK_TYPES)}}} "
        "or an SAE config with `hf_hook_name`"
    )


def _get(modules: dict[str, nn.Module], name: str, hook: str | None) -> nn.Module:
    if name not in modules:
        raise ConfigError(f"hook {hook!r} maps to module {name!r}, which this model does not have")
    return modules[name]


def first_tensor(value) -> torch.Tensor:
    """A block may return a Tensor (transformers 5) or a tuple whose first item is the hidden state."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise TypeError(f"cannot find a hidden-state tensor in {type(value).__name__}")


def replace_first_tensor(value, new: torch.Tensor):
    """Return `value` with its hidden-state tensor replaced by `new` (same container type)."""
    if isinstance(value, torch.Tensor):
        return new
    return (new, *value[1:]) if isinstance(value, tuple) else [new, *value[1:]]
