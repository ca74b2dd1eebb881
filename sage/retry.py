"""One back-off policy for every remote call (explainer APIs, local LLM servers, Neuronpedia)."""

from __future__ import annotations

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential


def backoff(
    retry_on: type[BaseException], max_attempts: int, initial_wait: float, max_wait: float
) -> Retrying:
    """A tenacity `Retrying` that retries `retry_on` up to `max_attempts` times with jittered exponential
    back-off (seconds, at most `max_wait`), and waits longer when the exception carries a server's
    `retry_after` (seconds) that asks for more. The last exception is re-raised."""
    jitter = wait_random_exponential(multiplier=initial_wait, max=max_wait)

    def wait(state) -> float:
        retry_after = getattr(state.outcome.exception(), "retry_after", None) or 0.0
        return min(max_wait, max(jitter(state), retry_after))

    return Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        retry=retry_if_exception_type(retry_on),
        reraise=True,
    )
