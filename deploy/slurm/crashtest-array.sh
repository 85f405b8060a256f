#!/usr/bin/env bash
# A crash campaign over a Slurm cluster: record it once, check it as a job array, merge the shards.
#
#   crashtest-array.sh WORKDIR SHARDS [wb crashtest campaign options...]
#
#   1. wb crashtest record WORKDIR/recording OPTIONS        (here: recording is quick, checking is the work)
#   2. sbatch --wait --array=0-(SHARDS-1) crashtest-shard.sbatch WORKDIR/recording WORKDIR/results
#                                                           (each task: one shard, WORKDIR/results/shard-i-of-n.json;
#                                                            task logs in WORKDIR/logs)
#   3. wb crashtest merge WORKDIR/results                   (the report, and WORKDIR/merged.json)
#
# WORKDIR must be on a file system the nodes share. $WB names the wb program (default: wb on PATH); extra
# sbatch options go in $SBATCH_OPTIONS (e.g. "--partition=long --time=02:00:00").
# Exit code: the merge's (0 no violation, 1 violations, 2 a shard missing or foreign).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR SHARDS [wb crashtest options...]" >&2; exit 2; }
workdir=$(mkdir -p "$1" && cd "$1" && pwd)
shards=$2
shift 2
wb=${WB:-wb}
export WB="$wb"
mkdir -p "$workdir/logs"
rm -rf "$workdir/recording" "$workdir/results"

# shellcheck disable=SC2086 # WB may be a command with arguments
$wb crashtest record "$workdir/recording" "$@"

# --wait returns when every task has ended; a task with violations exits 1, which is no reason not to merge.
# shellcheck disable=SC2086 # SBATCH_OPTIONS is a list of options
sbatch --wait --array="0-$((shards - 1))" --output="$workdir/logs/shard-%a.out" ${SBATCH_OPTIONS:-} \
  "$here/crashtest-shard.sbatch" "$workdir/recording" "$workdir/results" --save-log "$workdir/logs" \
  || echo "crashtest-array: some tasks exited non-zero (violations, or a failure: see $workdir/logs)" >&2

status=0
# shellcheck disable=SC2086
$wb crashtest merge "$workdir/results" --json > "$workdir/merged.json" || status=$?
# shellcheck disable=SC2086
$wb crashtest merge "$workdir/results" || true
exit $status
