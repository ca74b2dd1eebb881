"""Which torch device a command runs on: `--device auto|cpu|cuda|cuda:N|mps` (auto = cuda when present)."""

from __future__ import annotations

import torch

from sage.errors import ConfigError

#: the value of `--device` that picks the best device present
AUTO = "auto"


def resolve_device(spec: str | None = AUTO) -> str:
    """The torch device string for `spec`: None or "auto" = "cuda" when CUDA is present, else "cpu".

    Raises ConfigError for a device that this machine does not have, before any weights load.
    """
    if spec in (None, AUTO):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {spec!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: this torch build or machine has no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {spec!r}")
    return str(dev)


def synchronize(device: str) -> None:
    """Wait for queued kernels on `device` (a no-op on CPU): call before reading a clock."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
