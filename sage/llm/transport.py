"""Transport retries shared by every API backend: tenacity around one SDK call,
and the translation of SDK exceptions into retryable / fatal errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from sage.errors import ExplainerError, require_ints, require_range

T = TypeVar("T")

#: HTTP statuses worth retrying: timeout, conflict, rate limit; and every 5xx (Anthropic's 529 too).
RETRYABLE_STATUS = {408, 409, 429}


@dataclass(frozen=True)
class RetryConfig:
    """Bounded, jittered exponential back-off (seconds) around each API call."""

    #: calls at most, the first one included
    max_attempts: int = 6
    #: seconds before the first retry; each retry waits up to twice as long, jittered
    initial_wait: float = 1.0
    #: longest wait between two attempts, in seconds
    max_wait: float = 60.0
    #: per-request timeout handed to the SDK client, in seconds
    timeout: float = 120.0

    def __post_init__(self) -> None:
        require_ints(self, "max_attempts")
        require_range(self, "initial_wait", 0)
        require_range(self, "max_wait", self.initial_wait)
        require_range(self, "timeout", 0, open_low=True)


class TransientError(Exception):
    """A failure worth retrying (rate limit, timeout, 5xx, connection). `retry_after`: seconds, if the
    server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def call_with_retries(fn: Callable[[], T], policy: RetryConfig, who: str) -> T:
    """Run `fn`, retrying on TransientError; after `policy.max_attempts` raise ExplainerError."""
    backoff = wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def wait(state) -> float:
        # honour the server's Retry-After when it asks for longer than our back-off
        retry_after = getattr(state.outcome.exception(), "retry_after", None) or 0.0
        return min(policy.max_wait, max(backoff(state), retry_after))

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception_type(TransientError),
        reraise=True,
    )
    try:
        return retrying(fn)
    except TransientError as exc:
        raise ExplainerError(f"{who}: gave up after {policy.max_attempts} attempts: {exc}") from exc


def _retry_after(response) -> float | None:
    headers = getattr(response, "headers", None) or {}
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:  # an HTTP date: fall back to our own back-off
        pass
    return None


def sdk_error(exc: Exception, sdk, who: str) -> Exception:
    """Translate an `openai` / `anthropic` SDK exception (same class names in both) into
    TransientError (retry) or ExplainerError (fail at once, with a message a user can act on)."""
    if isinstance(exc, sdk.APITimeoutError):
        return TransientError(f"{who}: request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return TransientError(f"{who}: connection error: {exc}")
    if isinstance(exc, sdk.APIStatusError):
        code = exc.status_code
        detail = f"HTTP {code}: {exc.message}"
        if code in RETRYABLE_STATUS or code >= 500:
            return TransientError(f"{who}: {detail}", _retry_after(exc.response))
        if code == 401:
            return ExplainerError(f"invalid API key for {who} ({detail})")
        if code == 403:
            return ExplainerError(f"{who}: permission denied for this API key or model ({detail})")
        if code == 404:
            return ExplainerError(f"{who}: model or endpoint not found ({detail})")
        return ExplainerError(f"{who}: request rejected ({detail})")
    return ExplainerError(f"{who}: {exc}")
