#!/usr/bin/env bash
# The README's test command: fresh virtualenv (CPU torch), install SAGE with its test and ray extras,
# then lint (ruff), format check, the import-direction contracts (import-linter), and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[test,ray]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
