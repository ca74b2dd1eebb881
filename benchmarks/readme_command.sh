#!/usr/bin/env bash
# Time README command 1 as a new user meets it: a fresh clone of this repository's HEAD, a fresh
# virtualenv, a fresh SAGE_HOME and no pip cache. The command is read from README.md (its first
# line that starts with `python3 -m venv`) and run step by step (its `&&`-joined parts), so the
# figures are for what the README says, with each step's wall seconds and the total.
#
#   bash benchmarks/readme_command.sh [WORK_DIR]     # default: a new temporary folder
#
# Target (issue "Sparse, device-resident activations"): <= 480 s on this project's 2-core machines.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=${1:-$(mktemp -d -t sage-readme-XXXX)}
rm -rf "$work/clone" "$work/home"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export SAGE_HOME="$work/home" PIP_NO_CACHE_DIR=1
cmd=$(grep -m1 '^python3 -m venv' README.md)
echo "commit $(git rev-parse --short HEAD); README command 1: $cmd"
total=0
IFS=$'\n' read -r -d '' -a steps < <(echo "$cmd" | sed 's/ && /\n/g' && printf '\0')
for step in "${steps[@]}"; do
  t0=$(date +%s.%N)
  bash -c "$step" > "$work/step.log" 2>&1 || { tail -20 "$work/step.log"; echo "FAILED: $step"; exit 1; }
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  total=$(echo "$total + $dt" | bc)
  printf '%7.1f s  %s\n' "$dt" "$step"
done
printf '%7.1f s  total (target 480 s); load average now: %s\n' "$total" "$(cut -d' ' -f1-3 /proc/loadavg)"
