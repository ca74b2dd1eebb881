"""Exceptions SAGE raises for problems the user can fix (the CLI prints them, exit 2), and the checks
that settings dataclasses run on their values."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real


class SageError(Exception):
    """Base class: a clear, user-facing error."""


class SetupError(SageError):
    """The embedded model, corpus or SAE could not be prepared."""


class ConfigError(SageError):
    """Bad input: unknown feature, wrong SAE/model pairing, unknown hook, bad spec."""


class ExplainerError(SageError):
    """An LLM backend failed or returned output that never validated."""


class RemoteError(SageError):
    """A remote activation source (the Neuronpedia API) failed, refused the request or answered
    something that does not match its documented format. Nothing is made up in its place."""


class BudgetExceeded(SageError):
    """A hard budget (rounds, probes, tokens, USD) was reached."""


# -- validation of *Config dataclasses (called from their __post_init__) ------------------------------
def require_ints(cfg: object, *names: str, minimum: int = 1) -> None:
    """Raise ConfigError unless every field `names` of `cfg` is an integer >= `minimum`."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be an integer >= {minimum}, got {value!r}")


def require_range(
    cfg: object,
    name: str,
    low: float,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    """Raise ConfigError unless `low <= cfg.name <= high` (`<` where open); NaN never passes."""
    value = getattr(cfg, name)
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if isinstance(value, bool) or not isinstance(value, Real) or not (above and below):
        span = f"{'(' if open_low else '['}{low}, {high}{')' if open_high or high == math.inf else ']'}"
        raise ConfigError(f"{type(cfg).__name__}.{name} must be in {span}, got {value!r}")


def require_choice(cfg: object, name: str, choices: Iterable[str]) -> None:
    """Raise ConfigError unless `cfg.name` is one of `choices`."""
    value, choices = getattr(cfg, name), tuple(choices)
    if value not in choices:
        raise ConfigError(f"{type(cfg).__name__}.{name} must be one of {', '.join(choices)}, got {value!r}")
