#!/usr/bin/env bash
# Issue 14's GPU rows in one command, for a machine lent by the `device` tool (an NVIDIA H100/H200 with
# Python 3.12, torch and transformers installed, no network). Two steps:
#
#   bash benchmarks/gpu_checks.sh prepare      # here, after `sage setup`: fills .gpu/ (git-ignored)
#   device run: command "bash benchmarks/gpu_checks.sh run", carry [".gpu"], timeout_s 540
#
# prepare: wheels (CPython 3.12, manylinux x86-64, each without its dependencies) of every package the
#   checkout's .venv holds that the device image lacks (DEVICE_HAS, from the device's KINDS.md), less
#   developer tools; pure-Python packages with no wheel are built into one here. Beside them the
#   embedded tokenizer and the default corpus from $SAGE_HOME: a random-init subject uses that
#   tokenizer and the benchmarks read that corpus; no model weights travel (~40 MB in all).
# run: installs the wheels into /tmp/site, adds a stand-in `wandb` (sae-lens's config imports it; SAGE
#   never logs to it), then writes under $OUT (./gpu-out without one): the activations and mining
#   benchmarks (--json) on the smollm2-135m and gemma-2-2b shapes with random weights, the unit suite
#   with SAGE_TEST_DEVICE=cuda, and one log. Each step has its own time limit, so one that hangs
#   costs only its share; the most telling steps run first.
#
#   CHECKS_DRY=1 bash benchmarks/gpu_checks.sh run   # the same steps on this CPU, tiny sizes (a rehearsal)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)  # the device's copy of the tree may have no .git
cd "$root"
gpu=.gpu

# Packages the device image holds already (KINDS.md, 2026-11-17), and what SAGE's code never imports:
# developer tools, and plotly (only sae-lens's evals and plotting modules import it; 10 MB of the
# 64 MB a device call may carry).
DEVICE_HAS=" accelerate aiohttp anyio attrs certifi charset-normalizer click cloudpickle contourpy cycler
 einops filelock fonttools fsspec h11 hf-xet httpcore httpx huggingface-hub idna jaxtyping jinja2 joblib
 kiwisolver markdown-it-py markupsafe matplotlib mdurl mpmath narwhals networkx numpy packaging pandas
 patsy pillow pluggy protobuf psutil pyarrow pygments pyparsing python-dateutil pyyaml regex requests rich
 safetensors scipy sentencepiece shellingham six statsmodels sympy tokenizers torch tqdm transformers
 typing-extensions urllib3 wadler-lindig xxhash formulaic interface-meta typer iniconfig pytest
 annotated-doc "
NOT_CARRIED=" ruff import-linter grimp playwright wandb greenlet sage-sae pip setuptools wheel plotly
 plotly-express "

prepare() {
  local wheels=$gpu/wheels home=$gpu/home
  [ -x .venv/bin/python ] || { echo "no .venv here: run README command 1 first (it builds .venv)" >&2; exit 1; }
  rm -rf "$gpu" && mkdir -p "$wheels" "$home/models" "$home/corpus"
  grep -qx "/$gpu/" .git/info/exclude 2>/dev/null || echo "/$gpu/" >> .git/info/exclude
  .venv/bin/python -m pip freeze --exclude-editable | grep '==' | while IFS= read -r spec; do
    local name=${spec%%==*}
    name=$(echo "$name" | tr 'A-Z_' 'a-z-')
    [[ " $(echo $DEVICE_HAS $NOT_CARRIED) " == *" $name "* ]] && continue
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$wheels" "$spec" 2>/dev/null \
      || .venv/bin/python -m pip wheel -q --no-deps -w "$wheels" "$spec" \
      || { echo "no wheel for $spec" >&2; exit 1; }
  done || exit 1
  local home_src=${SAGE_HOME:-$HOME/.cache/sage}
  local model=$home_src/models/SmolLM2-135M-Instruct
  [ -f "$model/tokenizer.json" ] || { echo "run \`sage setup\` first (no $model)" >&2; exit 1; }
  mkdir -p "$home/models/SmolLM2-135M-Instruct"
  cp "$model"/*.json "$model"/*.jinja "$model"/sage_setup_complete "$home/models/SmolLM2-135M-Instruct/"
  cp -r "$home_src/corpus/." "$home/corpus/"
  du -sh "$gpu"
}

# step NAME SECONDS COMMAND...: one check with its own time limit; its stdout goes to $out/NAME, its
# stderr and a non-zero exit status to the log. The other steps still run after a failed one; `run`
# exits 1 at the end if any failed, naming them.
failed=""
step() {
  local name=$1 secs=$2 rc=0
  shift 2
  echo "== $name (limit ${secs} s) $(date +%T)" >> "$log"
  timeout "$secs" "$@" > "$out/$name" 2>> "$log" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "$name: exit $rc$([ "$rc" = 124 ] && echo ' (its time limit)')" >> "$log"
    failed="$failed $name"
  fi
}

run() {
  out=${OUT:-$root/gpu-out}
  local py=python3 dev=cuda big=gemma-2-2b tokens=400000 site=/tmp/site tests=tests
  if [ -n "${CHECKS_DRY:-}" ]; then  # rehearsal on this machine's CPU: the .venv, the stand-in wandb
    py=$root/.venv/bin/python dev=cpu big="" tokens=4096 site=$(mktemp -d) tests="tests/sae tests/model"
  fi
  mkdir -p "$out"
  log=$out/log.txt
  : > "$log"
  if [ -z "${CHECKS_DRY:-}" ]; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "$gpu"/wheels/*.whl >> "$log" 2>&1 || { echo "wheel install failed" | tee -a "$log"; return 1; }
  fi
  mkdir -p "$site/wandb"
  printf '%s\n' '"""Stand-in for wandb: sae-lens imports it at module level; SAGE never logs to wandb."""' '' '' \
    'def __getattr__(name):' \
    '    raise AttributeError(f"wandb is not installed here (a stand-in): wandb.{name}")' \
    > "$site/wandb/__init__.py"
  export PYTHONPATH=$site:$root SAGE_HOME=$root/$gpu/home PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
  { nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    $py -c "import torch, transformers, sae_lens; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'sae-lens', sae_lens.__version__, 'cuda', torch.cuda.is_available())"
  } > "$out/device.txt" 2>> "$log"
  # the most telling first: a call cut short at its limit still brings back what finished
  step activations_smollm2-135m.json 150 \
    $py benchmarks/activations.py --device $dev --random-init smollm2-135m --compiled --json
  if [ -n "$big" ]; then
    step "activations_$big.json" 240 \
      $py benchmarks/activations.py --device $dev --random-init "$big" --compiled --json
  fi
  step "pytest_$dev.txt" 180 env SAGE_TEST_DEVICE=$dev \
    $py -m pytest -q --maxfail=20 -m "not integration" -p no:cacheprovider $tests
  step mining_smollm2-135m.json 120 $py benchmarks/mining.py --device $dev --random-init smollm2-135m \
    --tokens $tokens --limit-tokens $((tokens / 2)) --json
  if [ -n "$big" ]; then
    step "mining_$big.json" 180 $py benchmarks/mining.py --device $dev --random-init "$big" \
      --tokens $((tokens / 2)) --limit-tokens $((tokens / 4)) --json
  fi
  ls -la "$out" >> "$log"
  if [ -n "$failed" ]; then
    echo "failed:$failed (see $log)" | tee -a "$log" >&2
    return 1
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash benchmarks/gpu_checks.sh prepare|run" >&2; exit 2 ;;
esac
