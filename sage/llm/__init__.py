"""Explainer backends: one interface (structured request -> schema-valid dict + usage).

    make_backend("openai:gpt-4o-mini").complete(LLMRequest(task, messages, schema_name))

Specs: `offline` (default; rule-based, no network), `openai:MODEL`, `anthropic:MODEL`,
`openai-compatible:BASE_URL:MODEL`, `hf:MODEL` (`hf:default` = the embedded SmolLM2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from sage.errors import ConfigError
from sage.llm.base import Backend, ExplainerCallError, LLMRequest, LLMResponse, Usage
from sage.llm.transport import RetryConfig

__all__ = [
    "Backend",
    "ExplainerCallError",
    "LLMRequest",
    "LLMResponse",
    "RetryConfig",
    "Usage",
    "BACKENDS",
    "DEFAULT_SPEC",
    "default_spec",
    "make_backend",
    "parse_compatible",
    "VALID_SPECS",
]

DEFAULT_SPEC = "offline"
VALID_SPECS = (
    "offline | openai:MODEL | anthropic:MODEL | openai-compatible:BASE_URL:MODEL "
    "(e.g. openai-compatible:http://127.0.0.1:8080/v1:smollm) | hf:MODEL (hf:default = the embedded "
    "SmolLM2-135M-Instruct)"
)

# scheme://host[:port][/path without colons] ":" model (the model may contain colons, e.g. Ollama's llama3:8b)
_COMPATIBLE = re.compile(r"^(https?://[^/:]+(?::\d+)?(?:/[^:]*)?):(.+)$")


def default_spec() -> str:
    """`$SAGE_EXPLAINER` if set, else `offline`: SAGE never picks a paid API on its own."""
    return os.environ.get("SAGE_EXPLAINER") or DEFAULT_SPEC


def parse_compatible(rest: str) -> tuple[str, str]:
    """`http://127.0.0.1:8080/v1:smollm` -> (`http://127.0.0.1:8080/v1`, `smollm`)."""
    m = _COMPATIBLE.match(rest)
    if not m:
        raise ConfigError(
            f"cannot read openai-compatible:{rest}; expected openai-compatible:BASE_URL:MODEL, "
            "e.g. openai-compatible:http://127.0.0.1:8080/v1:smollm"
        )
    return m.group(1).rstrip("/"), m.group(2)


# -- the backends, by spec prefix --------------------------------------------------------------------
# Each factory imports its backend on first use: the SDKs (openai, anthropic, transformers) are slow
# to import and only one of them is needed in a run.
def _offline(_rest: str, **options) -> Backend:
    from sage.llm.offline import OfflineExplainer

    return OfflineExplainer(**options)


def _openai(model: str, **options) -> Backend:
    from sage.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(model, **options)


def _openai_compatible(rest: str, **options) -> Backend:
    from sage.llm.openai_backend import OpenAIBackend

    base_url, model = parse_compatible(rest)
    return OpenAIBackend(model, base_url=base_url, **options)


def _anthropic(model: str, **options) -> Backend:
    from sage.llm.anthropic_backend import AnthropicBackend

    return AnthropicBackend(model, **options)


def _hf(model: str, **options) -> Backend:
    from sage.llm.hf_backend import HFBackend

    return HFBackend(model, **options)


#: spec prefix -> factory(rest of the spec, **options). `offline` takes no argument; every other
#: kind needs one (`openai:MODEL`, ...).
BACKENDS: dict[str, Callable[..., Backend]] = {
    "offline": _offline,
    "openai": _openai,
    "openai-compatible": _openai_compatible,
    "anthropic": _anthropic,
    "hf": _hf,
}


def make_backend(spec: str | None = None, **options) -> Backend:
    """The backend for `spec` (None: `default_spec()`). `options` go to its constructor
    (e.g. `retry=RetryConfig(...)`, `prices={...}`, `max_schema_retries=2`)."""
    spec = (spec or default_spec()).strip()
    kind, _, rest = spec.partition(":")
    factory = BACKENDS.get(kind)
    if factory is not None and bool(rest) == (kind != "offline"):
        return factory(rest, **options)
    raise ConfigError(f"unknown explainer {spec!r}; valid forms: {VALID_SPECS}")
