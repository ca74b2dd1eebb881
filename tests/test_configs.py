"""Every settings dataclass: valid defaults; an impossible value is a ConfigError naming the field."""

import math

import pytest

from agents import AgentConfig, BudgetConfig
from sage.errors import ConfigError
from sage.evaluation.baselines import BaselineConfig
from sage.evaluation.data import HeldOutConfig
from sage.evaluation.intervention import InterventionConfig
from sage.evaluation.scorers import ScorerConfig
from sage.intervention.edits import GenerationConfig, SteerConfig
from sage.intervention.effects import EffectConfig
from sage.llm.transport import RetryConfig
from sage.model.engine_config import EngineConfig
from sage.sae.train import TrainSaeConfig
from sage.steering.select import DtcConfig
from sage.store.activation_store import StoreConfig
from sage.vocab.tables import VocabConfig

BAD = [
    (EngineConfig, {"batch_size": 0}, "batch_size"),
    (EngineConfig, {"skip_positions": 64}, "skip_positions"),
    (EngineConfig, {"max_norm_ratio": 1.0}, "max_norm_ratio"),
    (StoreConfig, {"top_k": 0}, "top_k"),
    (StoreConfig, {"max_tokens": -5}, "max_tokens"),
    (VocabConfig, {"alpha": 0.0}, "alpha"),
    (VocabConfig, {"dominate_share": 1.5}, "dominate_share"),
    (RetryConfig, {"max_attempts": 0}, "max_attempts"),
    (RetryConfig, {"initial_wait": 10.0, "max_wait": 1.0}, "max_wait"),
    (AgentConfig, {"active_threshold": 0.0}, "active_threshold"),
    (AgentConfig, {"n_top": 2.5}, "n_top"),
    (BudgetConfig, {"max_rounds": 0}, "max_rounds"),
    (BudgetConfig, {"max_usd": math.nan}, "max_usd"),
    (HeldOutConfig, {"fuzz_highlight": 0.0}, "fuzz_highlight"),
    (ScorerConfig, {"fuzz_share": 2.0}, "fuzz_share"),
    (BaselineConfig, {"mi_words": 0}, "mi_words"),
    (SteerConfig, {"positions": "some"}, "positions"),
    (SteerConfig, {"top_p": 0.0}, "top_p"),
    (DtcConfig, {"k": 0}, "k"),
    (EffectConfig, {"strategy": "boost"}, "strategy"),
    (EffectConfig, {"min_rise": 0.0}, "min_rise"),
    (InterventionConfig, {"max_new_tokens": 0}, "max_new_tokens"),
    (VocabConfig, {"variant": "theirs"}, "variant"),
    (TrainSaeConfig, {"architecture": "relu"}, "architecture"),
    (TrainSaeConfig, {"lr": 0.0}, "lr"),
]


@pytest.mark.parametrize(
    "cls",
    [
        EngineConfig,
        StoreConfig,
        VocabConfig,
        RetryConfig,
        AgentConfig,
        BudgetConfig,
        HeldOutConfig,
        ScorerConfig,
        BaselineConfig,
        SteerConfig,
        GenerationConfig,
        DtcConfig,
        EffectConfig,
        InterventionConfig,
        TrainSaeConfig,
    ],
)
def test_defaults_are_valid(cls):
    cls()


@pytest.mark.parametrize(("cls", "change", "field"), BAD, ids=[f"{c.__name__}-{f}" for c, _, f in BAD])
def test_impossible_value_names_its_field(cls, change, field):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must"):
        cls(**change)


def test_unusual_but_possible_values_pass():
    BudgetConfig(max_usd=0.0)  # no paid call at all
    AgentConfig(max_refinements=0)  # never refine
    EngineConfig(skip_positions=0)  # a model without an attention sink
    SteerConfig(temperature=0.0)  # greedy
