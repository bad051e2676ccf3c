#!/usr/bin/env bash
# Install audioadapt with its dev extra into ./.venv and run the full test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: a CPU build where the index provides one.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
# pytest exits 5 when no test ran: that is a failure too (set -e).
exec .venv/bin/python -m pytest "$@"
