"""Activation engine: per-token SAE feature activations for batches of texts.

Speed comes from two choices: the forward pass stops right after the hook module
(an exception raised from the hook; no later layers, no LM head), and the model
runs in bf16 by default. Sequences are right-padded with an attention mask, so a
real token's activations never depend on padding (causal attention).

Position 0 of every sequence holds the subject's sink token (see
`sage.model.subject.sink_token_id`) and is reported with `sink=True`; statistics
everywhere ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sage.model.capture import HookCapture
from sage.model.engine_config import ENGINE
from sage.model.subject import Subject


@dataclass
class TokenActivations:
    """Activations of one text.

    tokens: decoded token strings, position 0 is the sink token.
    token_ids: the ids (len T).
    acts: float32 tensor [T, F] for the requested features (F = len(features)).
    features: the feature indices of the columns of `acts`.
    """

    tokens: list[str]
    token_ids: list[int]
    acts: torch.Tensor
    features: list[int] = field(default_factory=list)
    sinks: list[int] = field(default_factory=lambda: list(range(ENGINE.skip_positions)))

    def column(self, feature: int) -> torch.Tensor:
        """[T] activations of one feature."""
        return self.acts[:, self.features.index(feature)]

    def to_dict(self, feature: int) -> dict:
        col = self.column(feature)
        return {
            "tokens": self.tokens,
            "activations": [round(float(v), 5) for v in col],
            "sink_positions": self.sinks,
        }


class ActivationEngine:
    """Runs texts (or token batches) through a Subject's model up to its hook and encodes with its SAE."""

    def __init__(self, subject: Subject, batch_size: int = ENGINE.batch_size, max_length: int = 512):
        self.subject = subject
        self.batch_size = batch_size
        self.max_length = max_length
        self.capture = HookCapture(subject.model, subject.site)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hook-point activations [B, T, d_in] (model dtype), computing only the layers up to the hook."""
        return self.capture(input_ids, attention_mask)

    @torch.no_grad()
    def encode(self, hidden: torch.Tensor) -> torch.Tensor:
        """SAE feature activations [..., d_sae] (float32) for hook activations [..., d_in]."""
        return self.subject.sae.encode(hidden.float())

    @torch.no_grad()
    def feature_acts(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        features: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """[B, T, F] activations of `features` (all when None).

        Zeroed: padded positions, position 0 (the sink) and massive-activation tokens
        (`sink_mask`), none of which the SAE is meant to read.
        """
        return self._acts_and_sinks(input_ids, attention_mask, features)[0]

    def _acts_and_sinks(self, input_ids, attention_mask, features) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(input_ids, attention_mask)
        sinks = self.sink_mask(h)
        acts = self.encode(h)
        acts[sinks] = 0.0
        if features is not None:
            acts = acts[..., list(features)]
        if attention_mask is not None:
            acts = acts * attention_mask.to(acts.device).unsqueeze(-1).to(acts.dtype)
        return acts, sinks

    def sink_mask(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T] bool: position 0 and every token whose hook-point norm exceeds `subject.massive_norm`."""
        mask = hidden.float().norm(dim=-1) > self.subject.massive_norm
        mask[:, : ENGINE.skip_positions] = True
        return mask

    # -- texts -----------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with the sink token prepended (no other special tokens)."""
        tok = self.subject.tokenizer
        ids = tok(list(texts), add_special_tokens=False, truncation=True, max_length=self.max_length - 1)[
            "input_ids"
        ]
        return [[self.subject.sink_id, *x] for x in ids]

    def pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad id lists into (input_ids [B, T], attention_mask [B, T])."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.subject.sink_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids, mask

    def run(self, texts: Sequence[str], features: Sequence[int] | None = None) -> list[TokenActivations]:
        """Per-token activations for each text. Batches are formed by length to limit padding."""
        seqs = self.tokenize(texts)
        feats = (
            list(range(self.subject.d_sae))
            if features is None
            else [self.subject.check_feature(int(f)) for f in features]
        )
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        results: list[TokenActivations | None] = [None] * len(seqs)
        tok = self.subject.tokenizer
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            ids, mask = self.pad([seqs[i] for i in idx])
            acts, sinks = self._acts_and_sinks(ids, mask, feats)
            acts, sinks = acts.cpu(), sinks.cpu()
            for row, i in enumerate(idx):
                n = len(seqs[i])
                results[i] = TokenActivations(
                    tokens=[tok.decode([t]) for t in seqs[i]],
                    token_ids=list(seqs[i]),
                    acts=acts[row, :n].clone(),
                    features=feats,
                    sinks=torch.nonzero(sinks[row, :n]).flatten().tolist(),
                )
        return results  # type: ignore[return-value]

    def max_acts(self, texts: Sequence[str], feature: int) -> list[float]:
        """Max activation of `feature` over the non-sink tokens of each text."""
        skip = ENGINE.skip_positions
        out = []
        for ta in self.run(texts, [feature]):
            col = ta.column(feature)[skip:]
            out.append(float(col.max()) if col.numel() else 0.0)
        return out
