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

    sampled = {
        "token": "tax",
        "tokens": ["<s>", " tax", " the", " Tax", " tax"],
        "acts": [0, 0.6, 0.9, 0.0, 0.1],
    }
    chosen = {"tokens": ["<s>", " tax"], "acts": [0, 1.0]}  # a seed context: not an occurrence test
    got = occurrence_stats([sampled, chosen], threshold=0.25)
    # both case forms count, the strong " the" beside them does not; 0.1 fires but is not active
    assert got == {"tax": {"n": 3, "active": 1, "fires": 2, "mean": round(0.7 / 3, 4)}}


def test_predicate_r_is_pearson_r_of_the_mask_with_the_activations():
    from sage.hypotheses.scoring import predicate_r

    pred = {"type": "token_set", "tokens": ["tax"]}
    obs = [{"tokens": ["<s>", " tax", " the", " tax", " a"], "acts": [9.0, 1.0, 0.0, 0.5, 0.0]}]
    # positions 1..4 (the sink is never read): mask 1,0,1,0 against 1,0,.5,0
    assert predicate_r(pred, obs) == round(0.75 / (1.0 * 0.6875) ** 0.5, 4)
    assert predicate_r({"type": "token_set", "tokens": ["never"]}, obs) == 0.0  # a constant mask
    assert predicate_r(None, obs) is None
    # a weak tier predicts half: 'the' at .5 against its 0 lowers r below the strong-only mask's
    tiered = {"type": "token_set", "tokens": ["tax"], "weak": ["the"]}
    xs, ys = [1.0, 0.5, 1.0, 0.0], [1.0, 0.0, 0.5, 0.0]
    mx, my = sum(xs) / 4, sum(ys) / 4
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    want = sxy / (sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5
    assert predicate_r(tiered, obs) == round(want, 4) < predicate_r(pred, obs)


def test_context_detection_is_balanced_accuracy_over_contexts():
    from sage.hypotheses.scoring import context_detection

    def ctx(words, acts):
        return {"tokens": ["<s>", *words], "acts": [5.0, *acts]}  # the sink's activation is never read

    firing = [ctx([" tax", " a"], [0.9, 0]), ctx([" the", " levy"], [0, 0.1]), ctx([" a"], [0.2])]
    silent = [ctx([" tax", " b"], [0, 0]), ctx([" c"], [0])]
    pred = {"type": "token_set", "tokens": ["tax"]}
    # firing: 1 of 3 detected; silent: 1 of 2 left alone
    assert context_detection(pred, firing + silent) == round((1 / 3 + 1 / 2) / 2, 4)
    # a weak-tier token counts: detection reads the whole mask, as the offline detection scorer does
    assert context_detection({**pred, "weak": ["levy"]}, firing + silent) == round((2 / 3 + 1 / 2) / 2, 4)
    assert context_detection(pred, firing) is None and context_detection(None, silent) is None


def test_conjunction_split_counts_occurrences_with_and_without_the_condition():
    from sage.hypotheses.scoring import conjunction_split

    pred = {
        "type": "and",
        "all": [
            {"type": "token_set", "tokens": ["be"]},
            {"type": "preceded_by", "tokens": ["should"], "window": 2},
        ],
    }
    sampled = {
        "token": "be",
        "tokens": ["<s>", " should", " be", " to", " be", " be"],
        "acts": [0, 0, 0.9, 0, 0.0, 0.4],
    }
    assert conjunction_split(pred, [sampled], 0.25) == {"with": [1, 1, 0.9], "without": [2, 1, 0.4]}
    empty = {"with": [0, 0, 0.0], "without": [0, 0, 0.0]}
    assert conjunction_split(pred, [{**sampled, "token": None}], 0.25) == empty
    assert conjunction_split({"type": "token_set", "tokens": ["be"]}, [sampled], 0.25) is None
