"""Activation engine: per-token SAE feature activations for batches of texts.

Speed comes from three choices: the forward pass stops right after the hook module
(an exception raised from the hook; no later layers, no LM head), the model runs
in bf16 by default, and activations stay sparse on the device: each token's
active features leave it as (indices, values) pairs (`sage.model.sparse`), never
as a dense [tokens, d_sae] tensor unless a caller asks for one. Sequences are
right-padded with an attention mask, so a real token's activations never depend
on padding (causal attention).

Position 0 of every sequence holds the subject's sink token (see
`sage.model.subject.sink_token_id`) and is reported with `sink=True`; statistics
everywhere ignore it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from sage.model.capture import HookCapture
from sage.model.engine_config import ENGINE
from sage.model.sparse import SparseActs, sparsify
from sage.model.subject import Subject
from sage.model.topk_encode import product_dtype, shared_encoder_weights, standard_topk, topk_encode


@dataclass
class TokenActivations:
    """Activations of one text.

    tokens: decoded token strings, position 0 is the sink token.
    token_ids: the ids (len T).
    acts: float32 [T, F] for the requested `features` (F = len(features)); None when the text was run
      for all features, which are then kept sparse in `sparse` ([T, k]; `dense()` builds [T, d_sae]).
    """

    tokens: list[str]
    token_ids: list[int]
    acts: torch.Tensor | None = None
    features: Sequence[int] = field(default_factory=list)
    sinks: list[int] = field(default_factory=lambda: list(range(ENGINE.skip_positions)))
    sparse: SparseActs | None = None

    def column(self, feature: int) -> torch.Tensor:
        """[T] activations of one feature."""
        if self.acts is None:
            return self.sparse.columns([feature])[:, 0]
        return self.acts[:, self.features.index(feature)]

    def dense(self) -> torch.Tensor:
        """float32 [T, F]: `acts`, or every feature's activations when the text was run for all."""
        return self.acts if self.acts is not None else self.sparse.to_dense()

    def to_dict(self, feature: int) -> dict:
        col = self.column(feature)
        return {
            "tokens": self.tokens,
            "activations": [round(float(v), 5) for v in col],
            "sink_positions": self.sinks,
        }


class ActivationEngine:
    """Runs texts (or token batches) through a Subject's model up to its hook and encodes with its SAE."""

    def __init__(
        self,
        subject: Subject,
        batch_size: int | None = None,
        max_length: int = 512,
        bf16_encoder: bool | None = None,
    ):
        """bf16_encoder: run a TopK SAE's encoder product in bf16 when the model runs in bf16
        (default `EngineConfig.bf16_encoder`)."""
        self.subject = subject
        self.batch_size = batch_size or ENGINE.batch_size_for(subject.device)
        self.max_length = max_length
        self.bf16_encoder = ENGINE.bf16_encoder if bf16_encoder is None else bf16_encoder
        self.capture = HookCapture(subject.model, subject.site)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hook-point activations [B, T, d_in] (model dtype), computing only the layers up to the hook."""
        return self.capture(input_ids, attention_mask)

    @torch.no_grad()
    def encode(self, hidden: torch.Tensor) -> torch.Tensor:
        """SAE feature activations [..., d_sae] (float32) for hook activations [..., d_in]."""
        return self.subject.sae.encode(hidden.float())

    @torch.no_grad()
    def encode_sparse(self, hidden: torch.Tensor) -> SparseActs:
        """The active features [..., k] of hook activations [..., d_in], on their device.

        A sae-lens TopK SAE yields its k winners straight from `topk` (`topk_encode`), so no dense
        [..., d_sae] tensor is built, with its product in bf16 when the model and `bf16_encoder` say
        so; any other SAE is encoded densely (float32) by sae-lens and cut to the most active features
        any position has, which loses nothing.
        """
        sae = self.subject.sae
        k = standard_topk(sae)
        if k is None:
            return sparsify(sae.encode(hidden.float()))
        weights = shared_encoder_weights(sae, product_dtype(sae, hidden.dtype, self.bf16_encoder))
        return topk_encode(sae, hidden, k, weights)

    @torch.no_grad()
    def feature_acts(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        features: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """[B, T, F] activations of `features` (all when None), on the subject's device.

        Zeroed: padded positions, position 0 (the sink) and massive-activation tokens
        (`sink_mask`), none of which the SAE is meant to read.
        """
        acts, _ = self.sparse_acts(input_ids, attention_mask)
        return acts.to_dense() if features is None else acts.columns(features)

    @torch.no_grad()
    def sparse_acts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[SparseActs, torch.Tensor]:
        """(active features [B, T, k], sink mask [B, T] bool), both on the subject's device.

        Sinks and padded positions hold no active feature (their values are 0).
        """
        h = self.hidden(input_ids, attention_mask)
        sinks = self.sink_mask(h)
        keep = ~sinks
        if attention_mask is not None:
            keep &= attention_mask.to(keep.device).bool()
        return self.encode_sparse(h).masked(keep), sinks

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

    def length_batches(
        self, seqs: Sequence[Sequence[int]]
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(positions in `seqs`, input_ids [B, T], attention_mask [B, T]) for batches of up to
        `batch_size` sequences of similar length (sorted by length, so padding stays small)."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield (idx, *self.pad([seqs[i] for i in idx]))

    def run(self, texts: Sequence[str], features: Sequence[int] | None = None) -> list[TokenActivations]:
        """Per-token activations for each text, in batches of similar length (`length_batches`).

        With `features`, each result holds their dense columns; without, all features, kept sparse.
        Only these results leave the device.
        """
        seqs = self.tokenize(texts)
        feats = None if features is None else [self.subject.check_feature(int(f)) for f in features]
        results: list[TokenActivations | None] = [None] * len(seqs)
        strings = self.subject.token_strings
        for idx, ids, mask in self.length_batches(seqs):
            acts, sinks = self.sparse_acts(ids, mask)
            sinks = sinks.cpu()
            # only what the caller asked for leaves the device: all features sparse, or a few dense
            sparse, dense = (acts.to("cpu"), None) if feats is None else (None, acts.columns(feats).cpu())
            for row, i in enumerate(idx):
                n = len(seqs[i])
                results[i] = TokenActivations(
                    tokens=strings(seqs[i]),
                    token_ids=list(seqs[i]),
                    acts=None if dense is None else dense[row, :n].clone(),
                    features=range(self.subject.d_sae) if feats is None else feats,
                    sinks=torch.nonzero(sinks[row, :n]).flatten().tolist(),
                    sparse=None if sparse is None else sparse[row, :n],
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
