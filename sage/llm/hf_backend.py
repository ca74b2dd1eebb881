"""`hf:MODEL`: a local transformers chat model (`hf:default` = the embedded SmolLM2-135M-Instruct).

Nothing constrains a local model's decoding, so the schema goes into the system prompt
and the first JSON object is extracted from the generated text; the base class validates
and re-asks. Small models often fail; that ends in a clear ExplainerError, never in made-up output."""

from __future__ import annotations

import json
import threading

import torch

from sage.errors import ConfigError
from sage.llm.base import Backend, LLMRequest, Usage

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def schema_instruction(schema: dict) -> str:
    return (
        "Reply with only one JSON object, no prose, that validates against this JSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


class HFBackend(Backend):
    """Greedy (temperature 0) or sampled generation with a local chat model. Free: usd = 0."""

    def __init__(self, model: str = "default", *, dtype: str = "float32", device: str = "cpu", **options):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from sage.model.subject import resolve_model_path

        super().__init__(**options)
        self.name = f"hf:{model}"
        self.price_model = None
        if dtype not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}")
        path = resolve_model_path(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[dtype]).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the chat model for {self.name}: {exc}") from exc
        if not self.tokenizer.chat_template:
            raise ConfigError(
                f"{self.name} has no chat template: the hf: explainer needs a chat (instruct) model"
            )
        self._generate_lock = threading.Lock()  # one generate at a time on a shared model

    def _encode(self, messages: list[dict]) -> dict:
        enc = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.model.device) for k, v in enc.items()}

    def _generate(self, messages: list[dict], max_tokens: int, temperature: float, **extra):
        from transformers import GenerationConfig

        enc = self._encode(messages)
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        gen = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            pad_token_id=self.tokenizer.pad_token_id or eos,
            eos_token_id=eos,
            **extra,
        )
        with self._generate_lock, torch.no_grad():
            out = self.model.generate(**enc, generation_config=gen)
        return enc["input_ids"].shape[1], out

    def _call(self, messages: list[dict], schema: dict, req: LLMRequest) -> tuple[str, Usage]:
        n_in, out = self._generate(with_schema(messages, schema), req.max_tokens, req.temperature)
        new = out[0, n_in:]
        return self.tokenizer.decode(new, skip_special_tokens=True), Usage(n_in, int(new.shape[0]))

    def top_logprobs(self, messages: list[dict], n: int = 20, max_tokens: int = 1) -> list[dict[str, float]]:
        n_in, out = self._generate(
            messages, max_tokens, 0.0, output_logits=True, return_dict_in_generate=True
        )
        self.priced(Usage(n_in, len(out.logits)))
        result = []
        for logits in out.logits:  # one [1, vocab] tensor per generated position
            top = torch.log_softmax(logits[0].float(), dim=-1).topk(n)
            pos: dict[str, float] = {}
            for lp, tid in zip(top.values.tolist(), top.indices.tolist()):
                pos.setdefault(
                    self.tokenizer.decode([tid]), lp
                )  # distinct ids may decode alike: keep the likelier
            result.append(pos)
        return result


def with_schema(messages: list[dict], schema: dict) -> list[dict]:
    """The messages with the schema instruction appended to the system message (or prepended as one)."""
    instruction = schema_instruction(schema)
    msgs = [dict(m) for m in messages]
    if msgs and msgs[0]["role"] == "system":
        msgs[0]["content"] = f"{msgs[0]['content']}\n\n{instruction}"
    else:
        msgs.insert(0, {"role": "system", "content": instruction})
    return msgs
