"""Transport retries shared by every API backend: tenacity around one SDK call,
and the translation of SDK exceptions into retryable / fatal errors.

Only what can succeed on a retry is retried: timeouts, dropped connections, rate limits, and a
server that is busy or still loading (408, 409, 429, 502, 503, 504). A response that names the
request (a validation error, an unsupported parameter) is a `RequestRejected` at once, whatever its
status: llama-cpp-python, for one, answers a request it cannot parse with HTTP 500. Any other 5xx
is retried, but the same error body twice means the failure is deterministic: `RequestRejected`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sage.errors import ExplainerError, require_ints, require_range
from sage.retry import backoff

T = TypeVar("T")

#: HTTP statuses that say "later" rather than "no": timeout, conflict, rate limit, bad gateway,
#: busy or loading (llama.cpp's server answers 503 "Loading model"), gateway timeout, Anthropic's
#: overloaded 529. Their bodies repeat while the condition lasts, so repetition is no signal there.
RETRY_LATER_STATUS = {408, 409, 429, 502, 503, 504, 529}

#: words with which servers reject the request itself (pydantic, FastAPI, llama.cpp, vLLM, Ollama);
#: such an error is the same on every retry
_NAMES_THE_REQUEST = re.compile(
    r"validation error|input should be|extra inputs|not permitted|unsupported|not supported|"
    r"unknown (?:field|parameter|argument)|unrecognized|invalid|must be|literal_error|"
    r"response_format|context length|context window",
    re.IGNORECASE,
)


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
    #: the same for a server on this machine (127.0.0.1, localhost): a CPU server may need minutes
    #: for a long answer, and it goes on generating after the client gives up, so a retry would only
    #: queue the same generation behind it (seen with llama-cpp-python: 1,100 tokens took 135 s)
    local_timeout: float = 900.0

    def __post_init__(self) -> None:
        require_ints(self, "max_attempts")
        require_range(self, "initial_wait", 0)
        require_range(self, "max_wait", self.initial_wait)
        require_range(self, "timeout", 0, open_low=True)
        require_range(self, "local_timeout", 0, open_low=True)


class TransientError(Exception):
    """A failure worth retrying (rate limit, timeout, 5xx, connection). `retry_after`: seconds, if the
    server said. `body`: for a 5xx that might be deterministic, the error body; the same body twice
    ends the retries (see `call_with_retries`)."""

    def __init__(self, message: str, retry_after: float | None = None, body: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.body = body


class RequestRejected(ExplainerError):
    """The server refused this request in a way a retry cannot change (a validation error, an
    unsupported parameter, the same error body twice). `status`: the HTTP status; `server_message`:
    what the server said, verbatim."""

    def __init__(self, message: str, status: int | None = None, server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def call_with_retries(fn: Callable[[], T], policy: RetryConfig, who: str) -> T:
    """Run `fn`, retrying on TransientError; after `policy.max_attempts` raise ExplainerError.
    A TransientError carrying a `body` already seen in this call becomes RequestRejected at once."""
    seen: set[str] = set()

    def attempt() -> T:
        try:
            return fn()
        except TransientError as exc:
            if exc.body is not None:
                if exc.body in seen:
                    raise RequestRejected(
                        f"{exc} (the same error came back on a retry, so retrying cannot help)",
                        server_message=exc.body,
                    ) from exc
                seen.add(exc.body)
            raise

    retrying = backoff(TransientError, policy.max_attempts, policy.initial_wait, policy.max_wait)
    try:
        return retrying(attempt)
    except TransientError as exc:
        said = str(exc) if str(exc).startswith(who) else f"{who}: {exc}"
        raise ExplainerError(f"{said} (gave up after {policy.max_attempts} attempts)") from exc


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


def server_message(exc) -> str:
    """What the server said in an SDK status error: the `message` of its error body (OpenAI,
    llama.cpp, vLLM and Ollama put it at `error.message` or at the top level), else the SDK's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
        if isinstance(inner, str):
            return inner
    elif isinstance(body, str) and body:
        return body
    return str(getattr(exc, "message", exc))


def sdk_error(exc: Exception, sdk, who: str, where: str | None = None) -> Exception:
    """Translate an `openai` / `anthropic` SDK exception (same class names in both) into
    TransientError (retry), RequestRejected (the request itself was refused) or ExplainerError
    (fail at once, with a message a user can act on). `where`: the server's address, named when it
    cannot be reached."""
    if isinstance(exc, sdk.APITimeoutError):
        return TransientError(f"{who}: request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        place = f" at {where}" if where else ""
        return TransientError(
            f"{who}: cannot reach the server{place} ({type(cause).__name__}: {cause}); is it running?"
        )
    if isinstance(exc, sdk.APIStatusError):
        code = exc.status_code
        said = server_message(exc)
        detail = f"HTTP {code}: {said}"
        if code == 401:
            return ExplainerError(f"invalid API key for {who} ({detail})")
        if code == 403:
            return ExplainerError(f"{who}: permission denied for this API key or model ({detail})")
        if code == 404:
            return ExplainerError(f"{who}: model or endpoint not found ({detail})")
        if code in RETRY_LATER_STATUS:
            return TransientError(f"{who}: {detail}", _retry_after(exc.response))
        if code < 500 or _NAMES_THE_REQUEST.search(said):
            return RequestRejected(f"{who}: the server rejected the request ({detail})", code, said)
        return TransientError(f"{who}: {detail}", _retry_after(exc.response), body=f"{code} {said}")
    return ExplainerError(f"{who}: {exc}")
