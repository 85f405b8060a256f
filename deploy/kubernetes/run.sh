#!/usr/bin/env bash
# The three steps in order, with kubectl against the current context (namespace: $NAMESPACE or the context's):
# the volume, the recording, the Indexed Job of shards, the merge; prints the merged report, exits with its code.
# The image wb-crashtest:latest must be where the cluster pulls from (see deploy/Containerfile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k() { kubectl ${NAMESPACE:+--namespace "$NAMESPACE"} "$@"; }
k apply -f "$here/volume.yaml"
for job in record shards merge; do
  k delete job "wb-crashtest-$job" --ignore-not-found --wait=true
done
k apply -f "$here/record-job.yaml"
k wait --for=condition=complete --timeout=1h job/wb-crashtest-record
k apply -f "$here/shards-job.yaml"
k wait --for=condition=complete --timeout=24h job/wb-crashtest-shards
k apply -f "$here/merge-job.yaml"
k wait --for=condition=complete --timeout=10m job/wb-crashtest-merge && status=0 || status=1
k logs job/wb-crashtest-merge
exit $status
