"""The one interface between the agent (and the evaluation) and whatever produces activations.

Two implementations share it: the local subject (`sage.model.subject.Subject` with its mined
`sage.store.activation_store.ActivationStore` and `sage.model.engine.ActivationEngine`) and a
remote one (`sage.neuronpedia.source`: Neuronpedia's feature and activation endpoints). The agent
graph is written against these protocols only, so it runs unchanged on either.

Contexts follow the store's conventions: `tokens[0]` is the sink position (never counted, see
`sage.model.positions`), `acts` aligns with `tokens` and holds raw activations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from sage.model.engine import TokenActivations


class Tokens(Protocol):
    """The part of a tokenizer the readers use: ids of a text, strings of ids, the vocabulary size."""

    def __call__(self, text, add_special_tokens: bool = ...) -> dict: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def __len__(self) -> int: ...


@runtime_checkable
class SubjectLike(Protocol):
    """What is known about the model + SAE pair without running it."""

    model_id: str
    sae_label: str

    @property
    def d_sae(self) -> int: ...

    @property
    def tokenizer(self) -> Tokens: ...

    def check_feature(self, index: int) -> int: ...

    def fingerprint(self) -> str: ...

    def info(self) -> dict: ...


class ProbeEngine(Protocol):
    """Activations of a feature on texts the caller chooses (the agent's probes, generated texts)."""

    def run(self, texts: Sequence[str], features: Sequence[int] | None = None) -> list[TokenActivations]: ...

    def max_acts(self, texts: Sequence[str], feature: int) -> list[float]: ...


@runtime_checkable
class ActivationSource(Protocol):
    """Seed data of a feature (statistics, top / quantile / negative contexts, corpus search) and an
    engine for custom texts. Context objects have `context_id`, `tokens`, `acts`, `text`, `max_act`."""

    subject: SubjectLike
    engine: ProbeEngine

    def feature_stats(self, feature: int): ...

    def top(self, feature: int, k: int | None = None) -> list: ...

    def quantile_samples(
        self,
        feature: int,
        n_quantiles: int | None = None,
        per_quantile: int | None = None,
        seed: int = 0,
        exclude_top: int = 0,
    ) -> list: ...

    def random_negatives(self, feature: int, n: int | None = None, seed: int = 0) -> list: ...

    def firing_contexts(self, feature: int): ...

    def contexts(self, feature: int, context_ids: Sequence[int], quantiles=None) -> list: ...

    def search(
        self, token_ids: Sequence[int], limit: int = 20, exclude: Sequence[int] = (), seed: int = 0
    ) -> list[int]: ...

    def iter_texts(self, context_ids: Sequence[int]) -> Iterator[str]: ...

    def context_tokens(self, context_ids: Sequence[int]) -> list[list[str]]: ...
