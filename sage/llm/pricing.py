"""The one price table for paid LLM APIs (USD per 1M tokens), overridable.

Prices are the providers' published list prices (standard tier, no batch or
cache discounts) as of `PRICES_AS_OF`; they change, so override them with a JSON
file named in `$SAGE_PRICES` or a dict passed to the backend, both of the form
`{"MODEL": {"input": USD_PER_1M, "output": USD_PER_1M}}`.

A model with no known price is never silently free: its calls are counted as
$0 *and flagged* (`Usage.usd_known=False`), and a warning names the model once.
Local models (hf:, offline, an openai-compatible server on this machine) cost 0.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from sage.errors import ConfigError

log = logging.getLogger(__name__)

PRICES_AS_OF = "2025-11"

#: model name -> (USD per 1M input tokens, USD per 1M output tokens).
#: A dated snapshot (gpt-4o-2024-08-06, claude-haiku-4-5-20251001, claude-3-5-haiku-latest)
#: takes its base model's price; any other variant (gpt-4o-realtime-preview) must be listed.
#: Models released after PRICES_AS_OF are deliberately absent rather than guessed.
PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o1": (15.00, 60.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    # Anthropic
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-opus": (15.00, 75.00),
}

_SNAPSHOT = re.compile(r"^(.+?)-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_warned: set[str] = set()


def _normalise(raw: dict, origin: str) -> dict[str, tuple[float, float]]:
    out = {}
    for model, price in raw.items():
        try:
            if isinstance(price, dict):
                out[model] = (float(price["input"]), float(price["output"]))
            else:
                inp, outp = price
                out[model] = (float(inp), float(outp))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f'bad price for {model!r} in {origin}: expected {{"input": USD_PER_1M, "output": USD_PER_1M}}'
            ) from None
    return out


def _env_prices() -> dict[str, tuple[float, float]]:
    path = os.environ.get("SAGE_PRICES")
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).expanduser().read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the price file SAGE_PRICES={path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"SAGE_PRICES={path} must hold a JSON object {{model: {{input, output}}}}")
    return _normalise(raw, path)


class PriceTable:
    """`PRICES`, updated by `$SAGE_PRICES`, updated by `overrides` (later wins)."""

    def __init__(self, overrides: dict | None = None):
        self.prices = {**PRICES, **_env_prices(), **_normalise(overrides or {}, "the prices argument")}

    def lookup(self, model: str) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens for `model` (or the base model of a dated snapshot); None if
        unknown."""
        if model in self.prices:
            return self.prices[model]
        snapshot = _SNAPSHOT.match(model)
        return self.prices.get(snapshot.group(1)) if snapshot else None

    def usd(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Cost in USD of one call; 0 for a local model (`model=None`); None when the price is unknown."""
        if model is None:
            return 0.0
        price = self.lookup(model)
        if price is None:
            if model not in _warned:
                _warned.add(model)
                log.warning(
                    "no price known for model %r: its cost is counted as $0 and flagged usd_known=False; "
                    "add it to a JSON file named in SAGE_PRICES",
                    model,
                )
            return None
        return (input_tokens * price[0] + output_tokens * price[1]) / 1e6
