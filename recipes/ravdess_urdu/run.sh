#!/usr/bin/env bash
# Cross-lingual SER benchmark RAVDESS (English, source) -> URDU (target): every system, the oracle-multilabel
# bound, five seeds, three target protocols, with the ser_cpu profile. See README.md beside this script.
# Usage: bash recipes/ravdess_urdu/run.sh [WORK_DIR] [key.path=value ...] [--rows ROW ...]
#   WORK_DIR  runs, feature caches and logs (default /tmp/audioadapt-ravdess-urdu); a second call skips
#             finished runs and resumes interrupted ones
#   SEEDS="0 1 2 3 4" PROTOCOLS="held_out_speaker transductive paper" AUDIOADAPT_SHARED_DATA=../shared/data
#   (recipes/common/ser_to_urdu.sh runs the benchmark)
# The tables are copied to benchmarks/results/ser_ravdess_urdu_<protocol>.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-/tmp/audioadapt-ravdess-urdu}
shift $(( $# > 0 ? 1 : 0 ))
DATA=${AUDIOADAPT_SHARED_DATA:-../shared/data}
# normalizer.kind=dataset_meanstd: per mel bin, RAVDESS training statistics instead of the per-utterance default;
# chosen on RAVDESS -> EMO-DB, a pair that is never a target here (benchmarks/results/ser_ravdess_emodb_normalizer.md:
# +5.2 UA points [0.3, 10.1] over five seeds); pass normalizer.kind=instance_meanstd after WORK_DIR for the default.
exec bash recipes/common/ser_to_urdu.sh ravdess_urdu "ravdess:$DATA/ravdess" "$WORK" normalizer.kind=dataset_meanstd "$@"
