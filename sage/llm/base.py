"""The explainer-backend interface and the logic every backend shares: schema
validation, bounded re-asking on invalid output, transport retries, usage and cost."""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import prompts
from sage.errors import ExplainerError
from sage.llm.pricing import PriceTable
from sage.llm.structured import bundled_schema, extract_json, validation_error
from sage.llm.transport import RetryConfig, call_with_retries

log = logging.getLogger(__name__)

#: How often an invalid reply (bad JSON, schema violation) is re-asked before failing.
MAX_SCHEMA_RETRIES = 2


@dataclass(frozen=True)
class LLMRequest:
    """One structured question to an explainer.

    messages: OpenAI-style `{"role": "system"|"user"|"assistant", "content": str}`.
    schema_name: a schema in prompts/schemas/ the answer must validate against.
    context: the structured state summary that rule-based (offline) backends read instead of prose.
    """

    task: str
    messages: list[dict]
    schema_name: str
    context: dict = field(default_factory=dict)
    max_tokens: int = 1024
    temperature: float = 0.0


@dataclass(frozen=True)
class Usage:
    """Tokens and USD spent. `usd_known=False` when some call's price was unknown (counted as $0)."""

    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    usd_known: bool = True

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.usd + other.usd,
            self.usd_known and other.usd_known,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class LLMResponse:
    """A schema-valid answer. attempts: model calls made (1 + re-asks); usage summed over them."""

    data: dict
    usage: Usage
    attempts: int
    raw_text: str


class TruncatedReply(str):
    """A reply the server cut off at the token limit (`finish_reason: length`): never valid, even
    when what arrived happens to parse. `max_tokens`: the limit it ran into."""

    max_tokens: int

    def __new__(cls, text: str, max_tokens: int) -> TruncatedReply:
        out = super().__new__(cls, text)
        out.max_tokens = max_tokens
        return out


class ExplainerCallError(ExplainerError):
    """A call that failed after spending tokens: carries that usage so budgets stay honest."""

    def __init__(self, message: str, usage: Usage, attempts: int, raw_text: str = ""):
        super().__init__(message)
        self.usage = usage
        self.attempts = attempts
        self.raw_text = raw_text


class Backend(ABC):
    """Base of every explainer backend. Subclasses set `name` (the spec, e.g. `openai:gpt-4o-mini`)
    and `price_model` (name in the price table; None = free local model) and implement `_call`."""

    name: str = "backend"
    price_model: str | None = None

    def __init__(
        self,
        *,
        max_schema_retries: int = MAX_SCHEMA_RETRIES,
        retry: RetryConfig | None = None,
        prices: dict | None = None,
    ):
        self.max_schema_retries = max_schema_retries
        self.retry = retry or RetryConfig()
        self.prices = PriceTable(prices)
        self._lock = threading.Lock()
        #: everything this backend spent since it was made (complete + top_logprobs, failures included)
        self.total_usage = Usage()

    # -- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def _call(self, messages: list[dict], schema: dict, req: LLMRequest) -> tuple[str | dict, Usage]:
        """One model call. Returns the reply (text, or an already-parsed dict) and its token usage
        (usd left at 0: the base prices it). Raise TransientError for retryable transport failures,
        ExplainerError for fatal ones."""

    def top_logprobs(self, messages: list[dict], n: int = 20, max_tokens: int = 1) -> list[dict[str, float]]:
        """Top-`n` next-token log-probabilities (natural log), one `{token: logprob}` per generated
        position (`max_tokens` positions; the first is the next token after the prompt)."""
        raise NotImplementedError(f"{self.name} does not expose token log-probabilities")

    def check(self) -> None:
        """Fail early (ExplainerError) when the backend cannot work at all, e.g. a local server that
        is not running. Called once when a session opens, before the model loads; no-op by default."""

    # -- shared logic ----------------------------------------------------------------------------
    def priced(self, usage: Usage) -> Usage:
        """`usage` with its USD cost from the price table; also added to `total_usage`."""
        usd = self.prices.usd(self.price_model, usage.input_tokens, usage.output_tokens)
        out = Usage(usage.input_tokens, usage.output_tokens, usd or 0.0, usd is not None)
        with self._lock:
            self.total_usage = self.total_usage + out
        return out

    def call_with_retries(self, fn):
        """`fn()` with this backend's transport retry policy."""
        return call_with_retries(fn, self.retry, self.name)

    def complete(self, req: LLMRequest) -> LLMResponse:
        """Ask `req`; return a schema-valid dict. Invalid JSON or a schema violation is re-asked with
        the error (at most `max_schema_retries` times), then ExplainerCallError."""
        validator = prompts.validator(req.schema_name)
        schema = bundled_schema(req.schema_name)
        messages = [dict(m) for m in req.messages]
        usage, raw, error = Usage(), "", ""
        for attempt in range(1, self.max_schema_retries + 2):
            try:
                reply, call_usage = self.call_with_retries(lambda: self._call(messages, schema, req))
            except ExplainerError as exc:
                raise ExplainerCallError(str(exc), usage, attempt - 1, raw) from exc
            usage = usage + self.priced(call_usage)
            raw = reply if isinstance(reply, str) else json.dumps(reply)
            # one line per reply (a JSON string), so a log can be read back and checked
            log.debug("%s: %s reply (attempt %d): %s", self.name, req.task, attempt, json.dumps(raw[:4000]))
            try:
                if isinstance(reply, TruncatedReply):
                    raise ValueError(
                        f"the reply was cut off at the {reply.max_tokens}-token limit before the JSON "
                        "ended; give a shorter answer"
                    )
                data = reply if isinstance(reply, dict) else extract_json(reply)
                error = validation_error(validator, data)
            except ValueError as exc:
                error = str(exc)
            if error is None:
                return LLMResponse(data, usage, attempt, raw)
            messages += [
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": f"That reply is invalid: {error}. Answer again with only a JSON "
                    f"object that validates against the {req.schema_name} schema.",
                },
            ]
        raise ExplainerCallError(
            f"{self.name}: no valid {req.schema_name} output after {attempt} attempts; last error: {error}; "
            f"last reply: {raw[:500]!r}",
            usage,
            attempt,
            raw,
        )
