"""`openai:MODEL` and `openai-compatible:BASE_URL:MODEL` (vLLM, Ollama, llama.cpp server):
chat completions with a JSON-Schema `response_format`, or, for compatible servers, whichever
structured-output form the server accepts (`sage.llm.output_forms`)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

import openai

from sage.errors import ConfigError, ExplainerError
from sage.llm.base import Backend, LLMRequest, TruncatedReply, Usage
from sage.llm.output_forms import json_schema_format, negotiate
from sage.llm.transport import sdk_error

#: Reasoning models reject a temperature other than the default.
_NO_TEMPERATURE = re.compile(r"^(o\d|gpt-5)")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


class OpenAIBackend(Backend):
    """OpenAI chat completions. With `base_url`, any OpenAI-compatible server.

    OpenAI itself gets `response_format: json_schema` with the full schema. A compatible server gets
    the first structured-output form it accepts (`output_forms.negotiate`), with a schema relaxed
    for grammar compilers (`output_forms.sent_schema`). Validity is checked (and re-asked) by the
    base class either way.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None, **options):
        super().__init__(**options)
        self.model = model
        self.base_url = base_url
        self.compatible = base_url is not None
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if self.compatible:
            self.name = f"openai-compatible:{base_url}:{model}"
            # a server on this machine costs nothing; a remote one is priced by model name
            self.price_model = None if urlparse(base_url).hostname in _LOCAL_HOSTS else model
            key = key or "sk-no-key-needed"  # the client insists on a key; local servers ignore it
        else:
            self.name = f"openai:{model}"
            self.price_model = model
            if not key:
                raise ConfigError(
                    f"{self.name} needs an API key: set OPENAI_API_KEY "
                    "(or choose --explainer offline, which needs none)"
                )
        # max_retries=0: tenacity (in the base class) is the only retry layer
        local = self.compatible and urlparse(base_url).hostname in _LOCAL_HOSTS
        timeout = self.retry.local_timeout if local else self.retry.timeout
        self.client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)

    def _create(self, **kwargs):
        try:
            return self.client.chat.completions.create(model=self.model, **kwargs)
        except openai.APIError as exc:
            raise sdk_error(exc, openai, self.name, where=self.base_url) from exc

    def check(self) -> None:
        """For a compatible server: `GET /models` until it answers (with the retry policy), so that a
        server that is not running fails in one line before the model loads. Any HTTP answer, even
        an error, shows the server is up; only an unreachable one fails."""
        if self.base_url is None:
            return

        def ping() -> None:
            try:
                self.client.models.list()
            except openai.APIStatusError:
                return
            except openai.APIError as exc:
                raise sdk_error(exc, openai, self.name, where=self.base_url) from exc

        self.call_with_retries(ping)

    def _sampling(self, max_tokens: int, temperature: float) -> dict:
        if self.compatible:  # many compatible servers know only the older max_tokens
            return {"max_tokens": max_tokens, "temperature": temperature}
        args = {"max_completion_tokens": max_tokens}
        if not _NO_TEMPERATURE.match(self.model):
            args["temperature"] = temperature
        return args

    def _call(self, messages: list[dict], schema: dict, req: LLMRequest) -> tuple[str, Usage]:
        sampling = self._sampling(req.max_tokens, req.temperature)
        if self.base_url is None:
            fmt = json_schema_format(req.schema_name, schema)
            resp = self._create(messages=messages, response_format=fmt, **sampling)
        else:
            resp = negotiate(
                self.base_url,
                lambda form: self._create(**form.request(messages, req.schema_name, schema), **sampling),
                self.name,
            )
        if not resp.choices:
            raise ExplainerError(f"{self.name}: the reply had no choices")
        choice = resp.choices[0]
        msg = choice.message
        text = msg.content or (f"(refused: {msg.refusal})" if getattr(msg, "refusal", None) else "")
        if choice.finish_reason == "length":  # cut off mid-answer: invalid, whatever it parses to
            text = TruncatedReply(text, req.max_tokens)
        return text, _usage(resp)

    def top_logprobs(self, messages: list[dict], n: int = 20, max_tokens: int = 1) -> list[dict[str, float]]:
        resp = self.call_with_retries(
            lambda: self._create(
                messages=messages, logprobs=True, top_logprobs=n, **self._sampling(max_tokens, 0.0)
            )
        )
        self.priced(_usage(resp))
        logprobs = resp.choices[0].logprobs if resp.choices else None
        if logprobs is None or not logprobs.content:
            raise ExplainerError(f"{self.name}: the server returned no log-probabilities")
        return [{alt.token: alt.logprob for alt in pos.top_logprobs} for pos in logprobs.content]


def _usage(resp) -> Usage:
    u = resp.usage  # some compatible servers omit it: then tokens count as 0 (they are local and free)
    return Usage(u.prompt_tokens or 0, u.completion_tokens or 0) if u else Usage()
