"""Tiny, self-contained stand-ins for tests, benchmarks and examples: a random-init Llama-family
model with its own BPE tokenizer, SAEs saved with sae-lens, a tiny mined activation store, and
the answers of a scripted explainer. Built in about a second, no network.

The scripted answers keep one hypothesis open forever, so a run lasts exactly `max_rounds`
rounds (no early convergence), and give every probe a fresh text. Nothing in the library
imports this module.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXTS = [
    "The cat sat on the mat. The dog ran in the park.",
    "In 1999, the city of Paris had 2 million people!",
    'She said: "Hello, world." Then she left quickly.',
    "Numbers like 42, 7 and 365 appear in many tables.",
    "Once upon a time there was a king who loved gold.",
    "def add(a, b): return a + b  # a small function",
    "London, Berlin and Rome are capital cities of Europe.",
    "I think therefore I am, wrote the French philosopher.",
]
SINK = "<|endoftext|>"


def build_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[SINK, "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXTS * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>", pad_token="<|im_end|>"
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    fast.save_pretrained(out)
    return fast


def build_model(out: Path, model_type: str = "llama", seed: int = 0, n_layers: int = 4, d_model: int = 64):
    """Save a random-init causal LM of `model_type` plus the fixture tokenizer into `out`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    common = dict(vocab_size=len(tok), tie_word_embeddings=True)
    if model_type == "gpt2":
        cfg = AutoConfig.for_model(
            "gpt2", n_embd=d_model, n_layer=n_layers, n_head=4, n_positions=256, **common
        )
    else:
        cfg = AutoConfig.for_model(
            model_type,
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=d_model // 4,
            max_position_embeddings=256,
            **common,
        )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(out)
    return model, tok


def build_sae(
    out: Path,
    d_in: int = 64,
    d_sae: int = 128,
    k: int = 8,
    hook: str = "blocks.2.hook_resid_post",
    hf_hook: str | None = "model.layers.2",
    seed: int = 0,
    model_name: str | None = None,
):
    """Save a TopK SAE with random (but firing) weights in sae-lens's disk format."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    meta = dict(hook_name=hook)
    if model_name:
        meta["model_name"] = model_name
    if hf_hook:
        meta["hf_hook_name"] = hf_hook
    sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, metadata=SAEMetadata(**meta)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=g) / d_in**0.5)
        sae.W_dec.copy_(sae.W_enc.T.clone())
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    sae.save_model(out)
    return sae


PROBE_WORDS = ["cat", "Paris", "42", "gold", "Berlin", "philosopher", "table", "king"]


def write_corpus(path: Path) -> Path:
    """A small corpus of distinct documents built from the fixture texts."""
    path.write_text("\n\n".join(f"{t} Item {i}." for i, t in enumerate(TEXTS * 5)), encoding="utf-8")
    return path


def build_store(subject, root: Path):
    """Mine a tiny activation store for `subject` under `root` (about a second)."""
    root.mkdir(parents=True, exist_ok=True)
    write_corpus(root / "corpus.txt")
    store = open_store(subject, root)
    store.mine(progress=False)
    return store


def open_store(subject, root: Path):
    """The tiny store `build_store` made under `root` (not mined again: the corpus file is not rewritten,
    so its fingerprint, and the store's folder, stay the same)."""
    from sage.data.corpus import from_paths
    from sage.store.activation_store import ActivationStore, StoreConfig

    corpus = from_paths([root / "corpus.txt"], name="tiny")
    cfg = StoreConfig(context_len=16, top_k=8, segment_contexts=64)
    return ActivationStore(subject, corpus, cfg, root=root / "store")


def open_session(model_dir: Path, sae_dir: Path, root: Path, explainer: str = "offline"):
    """A session on the tiny model, SAE and the store `build_store` mined under `root`: what each Ray
    worker of the distributed tests opens (tests/distributed)."""
    from sage.errors import ConfigError
    from sage.llm import make_backend
    from sage.model.subject import load_subject
    from sage.runs import Session

    subject = load_subject(str(model_dir), str(sae_dir), dtype="float32", device="cpu")
    store = open_store(subject, root)
    if not store.complete():
        raise ConfigError(f"the tiny store under {root} is not mined: call build_store first")
    return Session(subject, store, make_backend(explainer), "tiny")


def live_features(store, n: int) -> list[int]:
    """The `n` most frequently firing features (they have top contexts to seed from)."""
    d_sae = store.subject.d_sae
    return sorted(range(d_sae), key=lambda f: -store.feature_stats(f).frequency)[:n]


def answer(task: str, n: int) -> dict:
    """A schema-valid answer for `task`; `n` (the call's index) makes probe texts unique per call."""
    if task == "hypothesize":
        return {
            "hypotheses": [
                {
                    "text": "Fires on the token 'cat'.",
                    "kind": "lexical",
                    "role": "primary",
                    "predicate": {"type": "token_set", "tokens": ["cat"]},
                },
                {
                    "text": "Fires on digits.",
                    "kind": "syntactic-structural",
                    "role": "alternative",
                    "predicate": {"type": "structural", "property": "digit"},
                },
                {
                    "text": "Fires on word-initial tokens (control).",
                    "kind": "syntactic-structural",
                    "role": "control",
                    "predicate": {"type": "structural", "property": "word_start"},
                },
            ]
        }
    if task == "design":
        word = PROBE_WORDS[n % len(PROBE_WORDS)]
        return {
            "probes": [
                {
                    "hypothesis_id": "H1",
                    "text": f"Call {n}: the {word} sat on the mat.",
                    "purpose": "positive",
                    "expect": "high",
                },
                {
                    "hypothesis_id": "H1",
                    "text": f"Call {n}: the dog sat on the mat.",
                    "purpose": "minimal_pair",
                    "expect": "low",
                    "pair_of": 0,
                },
                {
                    "hypothesis_id": "H2",
                    "text": f"Call {n}: there were {n + 7} people.",
                    "purpose": "positive",
                    "expect": "high",
                },
            ]
        }
    if task == "analyze":  # H1 stays open, so the loop never converges before max_rounds
        return {
            "updates": [
                {"hypothesis_id": "H1", "status": "open", "note": "mixed evidence"},
                {
                    "hypothesis_id": "H2",
                    "status": "refined",
                    "new_text": "Fires on digits after a space.",
                    "new_predicate": {"type": "structural", "property": "digit"},
                    "note": "narrowed",
                },
                {"hypothesis_id": "H3", "status": "refuted", "note": "control does not fire"},
            ]
        }
    if task == "conclude":
        return {
            "labels": ["scripted: the token 'cat'"],
            "description": "Fires on 'cat' in the scripted probes; the control was refuted.",
            "best_hypothesis_ids": ["H1"],
        }
    raise ValueError(f"unknown task {task!r}")
