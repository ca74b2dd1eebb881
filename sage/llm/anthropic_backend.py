"""`anthropic:MODEL`: the messages API with forced tool use, whose input schema is the answer's schema."""

from __future__ import annotations

import os

import anthropic

from sage.errors import ConfigError
from sage.llm.base import Backend, LLMRequest, Usage
from sage.llm.transport import sdk_error

TOOL_NAME = "submit_answer"


class AnthropicBackend(Backend):
    """Anthropic messages API. The answer arrives as the `input` of a forced `tool_use` block.
    The API exposes no log-probabilities, so `top_logprobs` is not available, and the SDK (2.x)
    no longer takes sampling parameters, so `req.temperature` is not sent.
    base_url: a proxy or gateway (default: the SDK's, which honours $ANTHROPIC_BASE_URL)."""

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None, **options):
        super().__init__(**options)
        self.model = model
        self.name = f"anthropic:{model}"
        self.price_model = model
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError(
                f"{self.name} needs an API key: set ANTHROPIC_API_KEY "
                "(or choose --explainer offline, which needs none)"
            )
        # max_retries=0: tenacity (in the base class) is the only retry layer
        self.client = anthropic.Anthropic(
            api_key=key, base_url=base_url, max_retries=0, timeout=self.retry.timeout
        )

    def _call(self, messages: list[dict], schema: dict, req: LLMRequest) -> tuple[str | dict, Usage]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        tool = {
            "name": TOOL_NAME,
            "input_schema": schema,
            "description": (
                f"Submit the {req.task} answer; its input must follow the {req.schema_name} schema."
            ),
        }
        kwargs = dict(
            model=self.model,
            max_tokens=req.max_tokens,
            messages=[m for m in messages if m["role"] != "system"],
            tools=[tool],
            tool_choice={"type": "tool", "name": TOOL_NAME},
        )
        if system:
            kwargs["system"] = system
        try:
            resp = self.client.messages.create(**kwargs)
        except anthropic.APIError as exc:
            raise sdk_error(exc, anthropic, self.name) from exc
        usage = Usage(resp.usage.input_tokens, resp.usage.output_tokens)
        for block in resp.content:
            if block.type == "tool_use":
                return dict(block.input), usage
        # no tool call (e.g. stopped at max_tokens): hand the text to validation, which re-asks
        return "".join(getattr(b, "text", "") for b in resp.content), usage
