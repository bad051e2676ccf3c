#!/usr/bin/env bash
# Shared runner of the cross-lingual SER recipes: `audioadapt ser benchmark` from one source corpus to URDU with
# the ser_cpu profile, every system and the oracle-multilabel bound, then the tables copied to
# benchmarks/results/ser_<NAME>_<protocol>.{md,json,png} (AUDIOADAPT_RESULTS to copy them elsewhere).
# Usage (from a recipe): bash recipes/common/ser_to_urdu.sh NAME SOURCE_SPEC WORK_DIR [key.path=value ...]
#   SEEDS="0 1 2 3 4" PROTOCOLS="held_out_speaker transductive paper" AUDIOADAPT_SHARED_DATA=../shared/data
#   AUDIOADAPT=.venv/bin/audioadapt
# Every row unless the overrides are followed by benchmark options, e.g. --rows snsa_f nnpm.
# diagnostics.target_truth only adds the pseudo-multilabel purity to each NNPM-family run's metrics.csv (a log,
# never used for training or selection); the feature caches go to WORK_DIR, never into the corpus folders.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 3 ]; then
    echo "usage: $0 NAME SOURCE_SPEC WORK_DIR [key.path=value ...]" >&2
    exit 2
fi
NAME=$1 SOURCE=$2 WORK=$3
shift 3
DATA=${AUDIOADAPT_SHARED_DATA:-../shared/data}
SEEDS=${SEEDS:-0 1 2 3 4}
PROTOCOLS=${PROTOCOLS:-held_out_speaker transductive paper}
AA=${AUDIOADAPT:-.venv/bin/audioadapt}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
RESULTS=${AUDIOADAPT_RESULTS:-benchmarks/results}
mkdir -p "$WORK" "$RESULTS"
# key.path=value overrides go before the benchmark's list options, and any options (--rows ...) after them
OVERRIDES=()
while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do OVERRIDES+=("$1"); shift; done
# shellcheck disable=SC2086
$AA ser benchmark "cache.directory=$WORK/cache" diagnostics.target_truth=true "${OVERRIDES[@]}" \
    --source "$SOURCE" --target "urdu:$DATA/urdu" --out "$WORK/ser" --profile ser_cpu \
    --seeds $SEEDS --protocols $PROTOCOLS "$@" 2>&1 | tee -a "$WORK/ser.log"
for protocol in $PROTOCOLS; do
    for ext in md json png; do
        cp "$WORK/ser/$protocol/benchmark.$ext" "$RESULTS/ser_${NAME}_$protocol.$ext"
    done
done
echo "tables copied to $RESULTS/ser_${NAME}_<protocol>.{md,json,png}"
