#!/usr/bin/env bash
# Records a run that continues as new, for the replay tests: a dev server of
# its own and one worker with BATCH_SIZE=1 on a 230-member event, so the
# first run reaches its 200-batch limit (Settings.MaxBatchesPerRun) and
# continues as new; the history written is that first run's, ending in
# the continue-as-new. Writes workflows/testdata/$1.json.
#
#   scripts/record-can-history.sh v3-heartbeats-validators-continue-as-new
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: $0 <file name without .json>}"
out="workflows/testdata/$name.json"

port=7298
# shellcheck source=scripts/record-env.sh
. scripts/record-env.sh
bin/starter load-demo --code record --members 230 --seed 5
BATCH_SIZE=1 bin/worker >"$work/worker.log" 2>&1 &
worker=$!
sleep 2
bin/starter enable record --wait --timeout 5m
bin/starter pause record
bin/starter resume record
bin/starter disable record
sleep 1

sql() { psql -h 127.0.0.1 -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
event=$(sql "SELECT id FROM events WHERE code = 'record'")
first=$(bin/temporal workflow list --address "$TEMPORAL_ADDRESS" \
	--query "WorkflowId = 'matchmaking-$event' AND ExecutionStatus = 'ContinuedAsNew'" --output json |
	grep -o '"runId": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
if [ -z "$first" ]; then
	echo "the run did not continue as new"; exit 1
fi
bin/temporal workflow show --address "$TEMPORAL_ADDRESS" --workflow-id "matchmaking-$event" --run-id "$first" --output json >"$out"
echo "wrote $out ($(grep -c '"eventType"' "$out") events, $(du -h "$out" | cut -f1))"
