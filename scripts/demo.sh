#!/usr/bin/env bash
# Install audioadapt into ./.venv and run the main job on embedded, generated data.
# Usage: bash scripts/demo.sh [audioadapt sed demo options...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: a CPU build where the index provides one.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e .
exec .venv/bin/audioadapt sed demo "$@"
