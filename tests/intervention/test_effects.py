"""Output effects: the shift math, matched controls, re-measurability, and the output hypotheses' verdicts."""

import pytest
import torch

from sage.intervention import math as sm
from sage.intervention.effects import (
    EFFECTS,
    control_ids,
    feature_spec,
    measure_effect,
    next_logprobs,
    token_texts,
)
from sage.intervention.output import judge, output_hypotheses, output_section, own_prompts


def test_logprob_shift_and_rise_over_controls():
    base = torch.log_softmax(torch.zeros(2, 4), -1)
    steered = base.clone()
    steered[:, 1] += torch.tensor([1.0, 3.0])  # token 1 rises by 2 on average
    assert sm.logprob_shift(base, steered, [1, 2]).tolist() == pytest.approx([2.0, 0.0])
    assert sm.rise_over_controls([2.0, 1.0], [0.5, None]) == pytest.approx(1.5)
    assert sm.rise_over_controls([2.0], [None]) is None


def test_controls_are_matched_and_do_not_depend_on_the_other_targets(tiny_subject):
    texts = token_texts(tiny_subject)
    words = [i for i, t in enumerate(texts) if t.strip().isalpha() and len(t.strip()) >= 3][:5]
    ctrl = control_ids(tiny_subject, words, n=3, window=500, seed=0)
    for t, cs in zip(words, ctrl):
        assert cs and t not in cs
        for c in cs:
            assert texts[c][:1].isspace() == texts[t][:1].isspace()
            assert abs(len(texts[c].strip()) - len(texts[t].strip())) <= 1 and abs(c - t) <= 500
    # a token's controls are the same whatever else is measured with it (sage steer --measure-ids)
    assert control_ids(tiny_subject, words[2:3], n=3, window=500, seed=0) == ctrl[2:3]


@torch.no_grad()
def test_next_logprobs_read_the_last_position_and_effects_re_measure(tiny_subject):
    prompts = ("the cat sat on", "a dog")
    base = next_logprobs(tiny_subject, prompts)
    ids = [tiny_subject.sink_id, *tiny_subject.tokenizer("a dog", add_special_tokens=False)["input_ids"]]
    logits = tiny_subject.model(input_ids=torch.tensor([ids])).logits[0, -1]
    assert torch.allclose(base[1], torch.log_softmax(logits.float(), -1), atol=1e-4)
    spec = feature_spec(3, 5.0)
    steered = next_logprobs(tiny_subject, prompts, spec)
    assert not torch.allclose(base, steered)
    words = [t for t in token_texts(tiny_subject)[100:400] if t.strip().isalpha()][:5]
    a = measure_effect(tiny_subject, 3, 5.0, words, words=False, prompts=prompts)
    b = measure_effect(tiny_subject, 3, 5.0, words, words=False, prompts=prompts)
    assert a.to_dict() == b.to_dict() and a.targets
    # the shift is the mean over prompts of steered - base at the target token
    t = a.targets[0]
    assert t.shift == pytest.approx(float((steered[:, t.token_id] - base[:, t.token_id]).mean()), abs=1e-5)


def _hyp(direction="promotes"):
    hyps = output_hypotheses({"mi": ["cat", "dog"], "logitlens_bottom": [" the"]})
    return hyps[0 if direction == "promotes" else 1]


@pytest.mark.parametrize(
    ("amp", "abl", "status"),
    [(1.2, -0.3, "confirmed"), (1.2, 0.2, "open"), (0.1, -0.3, "refuted"), (-2.0, -1.0, "refuted")],
)
def test_promotes_verdicts_follow_the_two_experiments(amp, abl, status):
    h = judge(_hyp(), {"rise": amp}, {"rise": abl})
    assert h["status"] == status and h["amplify_rise"] == amp and "nats" in h["note"]


def test_suppresses_needs_a_fall():
    h = _hyp("suppresses")
    assert h["id"] == "O3" and h["direction"] == "suppresses"
    assert judge(h, {"rise": -EFFECTS.min_rise - 0.1}, {"rise": 0.4})["status"] == "confirmed"
    assert judge(h, {"rise": 1.0}, {"rise": 0.4})["status"] == "refuted"
    assert judge(h, None, None)["status"] == "open"


def test_own_prompts_end_at_the_peak():
    ctx = {"tokens": ["<s>", "The", " red", " car", " went"], "acts": [0.0, 0.0, 0.2, 0.9, 0.1]}
    silent = {"tokens": ["<s>", "x"], "acts": [0.0, 0.0]}
    assert own_prompts([silent, ctx, ctx], 4, skip=1) == ["The red car"]


def test_output_section_lists_tokens_that_pass_the_rise_either_way():
    hyps = [judge(_hyp(), {"rise": 1.0}, {"rise": -0.2})]
    tok = {"token_text": " cat", "controls": [], "text": "cat"}
    amplify = {
        "max_activation": 2.0,
        "tokens": [
            {**tok, "token": 1, "logprob_shift": 2.0, "control_shift": 0.5},
            {**tok, "token": 2, "logprob_shift": 0.1, "control_shift": 0.0},
            {**tok, "token": 3, "logprob_shift": -1.0, "control_shift": 0.0},
        ],
    }
    res = {"amplify": {"O1": amplify}, "ablate": {}, "continuations": [], "own_prompts": []}
    sec = output_section(hyps, res)
    assert [t["token"] for t in sec["promoted"]] == [1] and sec["promoted"][0]["rise"] == 1.5
    assert [t["token"] for t in sec["suppressed"]] == [3]
    assert sec["hypotheses"][0]["status"] == "confirmed" and sec["max_activation"] == 2.0
