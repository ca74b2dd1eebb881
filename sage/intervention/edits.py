"""Runtime steering: edit SAE features at the SAE's hook site while `model.generate` runs.

`steer(subject, prompt, spec)` generates twice from the same prompt with the same seed,
once unsteered and once with the edit of `spec` applied by a hook, and measures on each
generated text (always with the unsteered model, no hook):
- the steered features' own mean activation over the generated tokens, and
- the perplexity of the generated tokens (fluency).
`sweep` does the same over a grid of strengths.

Every prompt starts with the subject's sink token (as everywhere in SAGE) and the sink
position is never edited. Hooks are installed by the `residual_hook` context manager and
removed on exit, also when generation raises.

Strategies (arithmetic in `sage.intervention.math`; strengths are relative to each feature's
max activation, the AxBench convention):
- add:       x += strength * max_act(f) * unit decoder row of f.
- clamp:     feature f's code set to strength * max_act(f), reconstruction error kept.
- amplify:   as released with Wu et al. (arXiv 2502.15576; autoencoder.py `edit_generate`): a
             total magnitude m = strength * (mean max_act of the set) is added along the set's
             decoder rows, split by each feature's shortfall from m (pre-activations read
             before the TopK mask), then x is rescaled to its original norm.
- calibrate: as released: the amplify edit on a whole forward chunk, only when the trigger
             group's positive pre-activations over that chunk average at least `threshold`
             (the reference's cond_val, default 0.1). The reference always names a separate
             trigger group; with no --trigger the steered features stand in for it.

Positions: "all" edits every position after the sink (prompt and generated); "generated"
edits only the positions that predict new tokens: the last prompt position and every
generated token. Generation runs with the KV cache, so after the prompt the hook sees one
position per call; it counts positions to know where each call's chunk sits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm import tqdm

from sage.errors import ConfigError, require_choice, require_ints, require_range
from sage.intervention import math as sm
from sage.model.engine import ActivationEngine
from sage.model.engine_config import ENGINE
from sage.model.hooks import first_tensor, replace_first_tensor
from sage.model.subject import Subject

STRATEGIES = ("add", "clamp", "amplify", "calibrate")
POSITIONS = ("all", "generated")


@dataclass(frozen=True)
class SteerConfig:
    """Defaults of `sage steer` (one source of truth for the CLI and the API)."""

    #: tokens generated per continuation
    max_new_tokens: int = 40
    #: sampling seed, shared by the steered and unsteered runs so they differ only by the edit
    seed: int = 0
    #: > 0: sample (with top_p); 0: greedy decoding.
    temperature: float = 0.7
    #: nucleus sampling: the smallest token set with this much probability mass
    top_p: float = 0.9
    #: where edits apply: `all` positions after the sink, or only those that predict `generated` tokens
    positions: str = "all"
    #: calibrate: the trigger group's mean positive pre-activation over a chunk must reach this
    #: (activation units; the reference's `cond_val`, default 0.1 in `condit_actv`, autoencoder.py)
    threshold: float = 0.1
    #: `--sweep` strengths, in multiples of the feature's max activation
    sweep_strengths: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)

    def __post_init__(self) -> None:
        require_ints(self, "max_new_tokens")
        require_range(self, "temperature", 0)
        require_range(self, "top_p", 0, 1, open_low=True)
        require_choice(self, "positions", POSITIONS)


STEER = SteerConfig()


@dataclass(frozen=True)
class SteerSpec:
    """What to steer and how.

    features: SAE features to steer. max_acts: each feature's max activation (activation
    units; usually `FeatureStats.max_activation` from the activation store) that
    `strength` is relative to. triggers / threshold: calibrate only (empty triggers = the
    steered features).
    """

    features: tuple[int, ...]
    strategy: str
    strength: float
    max_acts: tuple[float, ...]
    positions: str = STEER.positions
    triggers: tuple[int, ...] = ()
    threshold: float = STEER.threshold

    def __post_init__(self):
        if not self.features:
            raise ConfigError("steering needs at least one feature")
        if len(set(self.features)) != len(self.features):
            raise ConfigError(f"a feature is listed twice in {list(self.features)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.positions not in POSITIONS:
            raise ConfigError(f"unknown positions {self.positions!r}; choose one of {', '.join(POSITIONS)}")
        if len(self.max_acts) != len(self.features):
            raise ConfigError(f"{len(self.features)} features but {len(self.max_acts)} max activations")
        bad = [f for f, m in zip(self.features, self.max_acts) if not m > 0]
        if bad:
            raise ConfigError(f"feature(s) {bad} have no positive max activation to scale the strength by")

    @property
    def values(self) -> tuple[float, ...]:
        """Per-feature edit size in activation units: strength * max_act."""
        return tuple(self.strength * m for m in self.max_acts)

    @property
    def magnitude(self) -> float:
        """amplify / calibrate: the total m added to the set, strength * the set's mean max_act (the
        reference passes m in absolute units; this keeps SAGE's strength convention)."""
        return self.strength * sum(self.max_acts) / len(self.max_acts)

    def with_strength(self, strength: float) -> SteerSpec:
        return replace(self, strength=float(strength))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"], d["max_acts"], d["triggers"] = (
            list(self.features),
            list(self.max_acts),
            list(self.triggers),
        )
        return d


class FeatureEditor:
    """Applies one `SteerSpec` to float32 residual vectors [..., d_in] (pure, no positions)."""

    def __init__(self, sae, spec: SteerSpec):
        self.sae, self.spec = sae, spec
        self.features = list(spec.features)
        self.values = torch.tensor(spec.values, dtype=torch.float32, device=sae.W_dec.device)
        self.triggers = list(spec.triggers or spec.features)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec.strategy
        if s == "add":
            return sm.add_edit(x, self.sae.W_dec[self.features].float(), self.values)
        if s == "clamp":
            return sm.clamp_edit(x, self.sae.encode(x), self.sae.decode, self.features, self.values)
        dec_rows = self.sae.W_dec[self.features].float()
        pre = self.pre_acts(x, self.features)
        if s == "amplify":
            return sm.amplify_edit(x, pre, dec_rows, self.spec.magnitude)
        return sm.calibrate_edit(
            x, self.pre_acts(x, self.triggers), pre, dec_rows, self.spec.magnitude, self.spec.threshold
        )

    def pre_acts(self, x: torch.Tensor, features: list[int]) -> torch.Tensor:
        """[..., len(features)] encoder pre-activations of `features` (before TopK / threshold), as the
        reference reads them: (x - b_dec) @ W_enc[:, S] + b_enc[S] (sae-lens `process_sae_in`)."""
        sae_in = self.sae.process_sae_in(x)
        return (sae_in @ self.sae.W_enc[:, features] + self.sae.b_enc[features]).float()


class PositionalEdit:
    """Hook body: edits the positions of each forward chunk that `positions` selects.

    Counts positions across calls: with a KV cache, `generate` first sends the whole
    prompt, then one new position per call. `prompt_len` includes the sink token.
    """

    def __init__(self, editor: Callable[[torch.Tensor], torch.Tensor], positions: str, prompt_len: int):
        self.editor = editor
        self.start = (
            ENGINE.skip_positions if positions == "all" else max(prompt_len - 1, ENGINE.skip_positions)
        )
        self.seen = 0
        self.hooked_positions = 0

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        t = h.shape[1]
        pos = torch.arange(self.seen, self.seen + t, device=h.device)
        self.seen += t
        mask = pos >= self.start
        if not bool(mask.any()):
            return h
        out = h.clone()
        # edit in float32 and cast back once; unselected positions keep their exact values
        out[:, mask] = self.editor(h[:, mask].float()).to(h.dtype)
        self.hooked_positions += int(mask.sum())
        return out


@contextlib.contextmanager
def residual_hook(subject: Subject, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, every forward pass replaces the hook-site activation h [B, T, d] by fn(h).

    The hook is removed on exit, whether the block finishes or raises.
    """
    module = dict(subject.model.named_modules())[subject.site.module_name]
    if subject.site.read == "input":

        def pre_hook(_module, args, kwargs):
            if args:
                return (fn(args[0]), *args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = fn(first_tensor(kwargs["hidden_states"]))
            return args, kwargs

        handle = module.register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:

        def post_hook(_module, _inputs, output):
            return replace_first_tensor(output, fn(first_tensor(output)))

        handle = module.register_forward_hook(post_hook)
    try:
        yield
    finally:
        handle.remove()


# -- generation and measurement -----------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    """One generated continuation and what it did.

    feature_acts: each steered feature's mean activation over the generated tokens (None
    when nothing was generated), read with the unsteered model. perplexity: of the
    generated tokens under the unsteered model. hooked_positions: positions the hook handed
    to the edit (calibrate may still leave some of them unchanged).
    """

    text: str
    token_ids: tuple[int, ...]
    feature_acts: dict[int, float | None]
    perplexity: float
    hooked_positions: int = 0

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "n_tokens": len(self.token_ids),
            "feature_mean_activation": {str(f): _round(v) for f, v in self.feature_acts.items()},
            "perplexity": _round(self.perplexity),
            "hooked_positions": self.hooked_positions,
        }


@dataclass(frozen=True)
class GenerationConfig:
    #: as in `SteerConfig`
    max_new_tokens: int = STEER.max_new_tokens
    #: as in `SteerConfig`
    seed: int = STEER.seed
    #: as in `SteerConfig`
    temperature: float = STEER.temperature
    #: as in `SteerConfig`
    top_p: float = STEER.top_p

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be at least 1")
        if self.temperature < 0:
            raise ConfigError("--temperature must be >= 0 (0 = greedy)")


@dataclass(frozen=True)
class SteerResult:
    prompt: str
    spec: SteerSpec
    generation: GenerationConfig
    unsteered: Generation
    steered: Generation

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "steering": self.spec.to_dict(),
            "generation": asdict(self.generation),
            "unsteered": self.unsteered.to_dict(),
            "steered": self.steered.to_dict(),
        }


@dataclass(frozen=True)
class SweepResult:
    prompt: str
    spec: SteerSpec
    generation: GenerationConfig
    unsteered: Generation
    rows: tuple[tuple[float, Generation], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = self.spec.to_dict()
        d.pop("strength")
        return {
            "prompt": self.prompt,
            "steering": d,
            "generation": asdict(self.generation),
            "unsteered": self.unsteered.to_dict(),
            "sweep": [{"strength": s, **g.to_dict()} for s, g in self.rows],
        }


def prompt_ids(subject: Subject, prompt: str) -> list[int]:
    """Token ids of `prompt` with the sink token prepended (as the activation engine does)."""
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    return ActivationEngine(subject).tokenize([prompt])[0]


@torch.no_grad()
def generate_ids(
    subject: Subject, ids: Sequence[int], gen: GenerationConfig, spec: SteerSpec | None = None
) -> tuple[list[int], int]:
    """Generate after `ids` (sink included), steered by `spec` when given.

    Returns (new token ids, cut before the first EOS; number of positions the hook edited).
    The RNG is seeded with gen.seed right before generating, so unsteered and steered runs
    draw the same random numbers.
    """
    model, tok = subject.model, subject.tokenizer
    device = next(model.parameters()).device
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    eos = tok.eos_token_id
    kwargs = dict(
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=gen.max_new_tokens,
        use_cache=True,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
    )
    if gen.temperature > 0:
        kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p, top_k=0)  # nucleus only
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    edit = PositionalEdit(FeatureEditor(subject.sae, spec), spec.positions, len(ids)) if spec else None
    torch.manual_seed(gen.seed)
    with residual_hook(subject, edit) if edit else contextlib.nullcontext():
        out = model.generate(input_ids, **kwargs)
    new = out[0, len(ids) :].tolist()
    if eos is not None and eos in new:
        new = new[: new.index(eos)]
    return new, (edit.hooked_positions if edit else 0)


@torch.no_grad()
def measure(
    subject: Subject,
    ids: Sequence[int],
    new_ids: Sequence[int],
    features: Sequence[int],
    hooked_positions: int = 0,
) -> Generation:
    """Mean activation of `features` on the generated tokens and their perplexity, unsteered model."""
    full = torch.tensor([list(ids) + list(new_ids)], dtype=torch.long)
    p = len(ids)
    acts = ActivationEngine(subject).feature_acts(full, None, features)[0, p:]  # [N, F]
    means = {int(f): (float(acts[:, i].mean()) if len(new_ids) else None) for i, f in enumerate(features)}
    device = next(subject.model.parameters()).device
    if new_ids:
        logits = subject.model(input_ids=full.to(device), use_cache=False).logits[0, p - 1 : -1]
        ppl = sm.perplexity(logits, full[0, p:].to(device))
    else:
        ppl = float("nan")
    text = subject.tokenizer.decode(list(new_ids), skip_special_tokens=True)
    return Generation(text, tuple(new_ids), means, ppl, hooked_positions)


def run_generation(
    subject: Subject,
    ids: Sequence[int],
    gen: GenerationConfig,
    spec: SteerSpec | None,
    features: Sequence[int],
) -> Generation:
    new, edited = generate_ids(subject, ids, gen, spec)
    return measure(subject, ids, new, features, edited)


def _check(subject: Subject, spec: SteerSpec) -> None:
    for f in (*spec.features, *spec.triggers):
        subject.check_feature(int(f))


def steer(
    subject: Subject, prompt: str, spec: SteerSpec, gen: GenerationConfig = GenerationConfig()
) -> SteerResult:
    """Unsteered and steered generations of `prompt` (same seed) with their measured effect."""
    _check(subject, spec)
    ids = prompt_ids(subject, prompt)
    base = run_generation(subject, ids, gen, None, spec.features)
    steered = run_generation(subject, ids, gen, spec, spec.features)
    return SteerResult(prompt, spec, gen, base, steered)


def sweep(
    subject: Subject,
    prompt: str,
    spec: SteerSpec,
    strengths: Sequence[float] = STEER.sweep_strengths,
    gen: GenerationConfig = GenerationConfig(),
    progress: bool = True,
) -> SweepResult:
    """`steer` over a grid of strengths (the unsteered generation is computed once)."""

    if not strengths:
        raise ConfigError("the sweep needs at least one strength")
    _check(subject, spec)
    ids = prompt_ids(subject, prompt)
    base = run_generation(subject, ids, gen, None, spec.features)
    rows = tuple(
        (float(s), run_generation(subject, ids, gen, spec.with_strength(s), spec.features))
        for s in tqdm(strengths, desc="steering sweep", unit="strength", disable=not progress)
    )
    return SweepResult(prompt, spec, gen, base, rows)


def max_acts_from_store(store, features: Sequence[int]) -> tuple[float, ...]:
    """Each feature's max activation from a mined `ActivationStore` (ConfigError if it never fired)."""
    out = []
    for f in features:
        m = store.feature_stats(int(f)).max_activation
        if not m > 0:
            raise ConfigError(
                f"feature {f} never fired in the activation store, so a strength relative to its max "
                "activation is undefined; pass --max-act explicitly"
            )
        out.append(float(m))
    return tuple(out)


def _round(v: float | None, nd: int = 4):
    if v is None or v != v:  # None or NaN
        return None
    return round(float(v), nd)
