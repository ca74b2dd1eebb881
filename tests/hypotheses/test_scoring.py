"""Tokens before active positions are ranked the same in every process (ties in text order)."""

from sage.hypotheses.scoring import preceding_tokens


def test_tied_preceding_tokens_come_in_text_order_not_hash_order():
    # six tokens, each once before the one active position: a set would order them by string hash,
    # which changes from process to process (PYTHONHASHSEED), and so would the explanation
    obs = {"tokens": ["<s>", "f", "e", "d", "c", "b", "a", "X"], "acts": [0, 0, 0, 0, 0, 0, 0, 1.0]}
    got = preceding_tokens([obs], threshold=0.5, window=6)
    assert got == [(t, 1.0) for t in ["f", "e", "d", "c", "b", "a"]]


def test_occurrence_stats_read_only_the_tested_token_in_contexts_sampled_for_it():
    from sage.hypotheses.scoring import occurrence_stats

    sampled = {"token": "tax", "tokens": ["<s>", " tax", " the", " Tax"], "acts": [0, 0.6, 0.9, 0.0]}
    chosen = {"tokens": ["<s>", " tax"], "acts": [0, 1.0]}  # a seed context: not an occurrence test
    got = occurrence_stats([sampled, chosen], threshold=0.25)
    # both case forms count, the strong " the" beside them does not
    assert got == {"tax": {"n": 2, "active": 1, "mean": 0.3}}
