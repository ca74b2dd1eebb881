"""Token ids -> display strings, each id decoded once per process and cached.

Each token shows as the string `tokenizer.decode([id])` gives (spaces restored, an incomplete UTF-8
piece as U+FFFD), the same everywhere SAGE prints a token. A decode call costs a round trip into the
tokenizer (~3 us here), and the store, the engine and the report show tens of thousands of tokens per
query, mostly the same few thousand ids: each id is decoded once per process and then looked up.
(`batch_decode` is no help: on SmolLM2's fast tokenizer it takes 0.55 s for the whole vocabulary, one
`decode` per id 0.14 s.)
"""

from __future__ import annotations

from collections.abc import Iterable


class TokenStrings:
    """Callable: ids -> their display strings, each id decoded once and cached."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, ids: Iterable[int]) -> list[str]:
        ids = [int(i) for i in ids]
        missing = sorted(set(ids).difference(self._cache))
        for i in missing:
            self._cache[i] = self._tokenizer.decode([i])
        return [self._cache[i] for i in ids]
