"""Tokens before active positions are ranked the same in every process (ties in text order)."""

from sage.hypotheses.scoring import preceding_tokens


def test_tied_preceding_tokens_come_in_text_order_not_hash_order():
    # six tokens, each once before the one active position: a set would order them by string hash,
    # which changes from process to process (PYTHONHASHSEED), and so would the explanation
    obs = {"tokens": ["<s>", "f", "e", "d", "c", "b", "a", "X"], "acts": [0, 0, 0, 0, 0, 0, 0, 1.0]}
    got = preceding_tokens([obs], threshold=0.5, window=6)
    assert got == [(t, 1.0) for t in ["f", "e", "d", "c", "b", "a"]]
