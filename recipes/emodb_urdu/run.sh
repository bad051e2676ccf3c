#!/usr/bin/env bash
# Cross-lingual SER benchmark EMO-DB (German, source) -> URDU (target): every system, the oracle-multilabel
# bound, five seeds, two target protocols (PROTOCOLS adds `paper`), with the ser_cpu profile and the package's
# defaults otherwise (the per-utterance input normaliser included).
# Usage: bash recipes/emodb_urdu/run.sh [WORK_DIR] [key.path=value ...] [--rows ROW ...]
#   WORK_DIR  runs, feature caches, logs and the EMO-DB manifest (default /tmp/audioadapt-emodb-urdu); a second
#             call skips finished runs and resumes interrupted ones
#   SEEDS="0 1 2 3 4" PROTOCOLS="held_out_speaker transductive" AUDIOADAPT_SHARED_DATA=../shared/data
#   (recipes/common/ser_to_urdu.sh runs the benchmark)
# The tables are copied to benchmarks/results/ser_emodb_urdu_<protocol>.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-/tmp/audioadapt-emodb-urdu}
shift $(( $# > 0 ? 1 : 0 ))
DATA=${AUDIOADAPT_SHARED_DATA:-../shared/data}
mkdir -p "$WORK"
export PROTOCOLS=${PROTOCOLS:-held_out_speaker transductive}
# The shared EMO-DB copy stores FLAC files under audio/ with its own manifest: the csv loader reads the four
# shared emotions from a path,label,speaker manifest written here (never into the corpus folder).
${PYTHON:-.venv/bin/python} recipes/emodb_urdu/emodb_manifest.py "$DATA/emodb" "$WORK/emodb4.csv"
exec bash recipes/common/ser_to_urdu.sh emodb_urdu "csv:$WORK/emodb4.csv" "$WORK" "$@"
