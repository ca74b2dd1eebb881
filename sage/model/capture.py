"""Early-exit forward: read a hook site's activations without running later layers."""

from __future__ import annotations

import torch
from torch import nn

from sage.model.hooks import HookSite, first_tensor


class _StopForward(Exception):
    """Raised from the hook to end the forward pass once the activation is captured."""


class HookCapture:
    """Callable that returns the activations at `site` for a batch, computing only the layers up to it."""

    def __init__(self, model: nn.Module, site: HookSite):
        self.model = model
        self.site = site
        self.module = dict(model.named_modules())[site.module_name]
        self._captured: torch.Tensor | None = None

    def _on_output(self, _module, _inputs, output):
        self._captured = first_tensor(output)
        raise _StopForward

    def _on_input(self, _module, args, kwargs):
        self._captured = args[0] if args else first_tensor(kwargs.get("hidden_states"))
        raise _StopForward

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Activations [B, T, d] in the model's dtype."""
        if self.site.read == "input":
            handle = self.module.register_forward_pre_hook(self._on_input, with_kwargs=True)
        else:
            handle = self.module.register_forward_hook(self._on_output)
        device = next(self.model.parameters()).device
        base = getattr(self.model, self.model.base_model_prefix, self.model)  # skip the LM head wrapper
        self._captured = None
        try:
            base(
                input_ids=input_ids.to(device),
                attention_mask=None if attention_mask is None else attention_mask.to(device),
                use_cache=False,
            )
        except _StopForward:
            pass
        finally:
            handle.remove()
        if self._captured is None:
            raise RuntimeError(f"hook on {self.site.module_name} never fired")
        out, self._captured = self._captured, None
        return out
