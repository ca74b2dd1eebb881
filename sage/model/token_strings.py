"""Token ids -> display strings, decoded in bulk and cached.

Each token shows as the string `tokenizer.decode([id])` gives (spaces restored, an incomplete UTF-8
piece as U+FFFD), the same everywhere SAGE prints a token. Decoding one id per call costs a Python
round trip into the tokenizer; the store and the engine decode tens of thousands of tokens per query,
so ids are decoded once, with one `batch_decode` per call for the ids not seen before.
"""

from __future__ import annotations

from collections.abc import Iterable


class TokenStrings:
    """Callable: ids -> their display strings, cached per tokenizer."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, ids: Iterable[int]) -> list[str]:
        ids = [int(i) for i in ids]
        missing = sorted(set(ids).difference(self._cache))
        if missing:
            self._cache.update(zip(missing, self._tokenizer.batch_decode([[i] for i in missing])))
        return [self._cache[i] for i in ids]
