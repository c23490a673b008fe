#!/usr/bin/env bash
# Measures wall time to fully match a fresh event per BATCH_SIZE, against a
# running dev server (make demo starts one) and the local PostgreSQL.
# usage: scripts/batch-size.sh [members] [runs] [sizes...]
set -euo pipefail
cd "$(dirname "$0")/.."
members="${1:-500}"; runs="${2:-3}"; shift 2 || true
sizes=("${@:-20 50 100 250 500}")
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/matchmaking_batchsize?sslmode=disable}"
bin/starter migrate --create-database >/dev/null
# With the cap on, a batch claims every queued member whatever BATCH_SIZE
# says, so the sizes are compared without it.
export MAX_APPEARANCES=0
for size in ${sizes[@]}; do
	export BATCH_SIZE=$size TEMPORAL_TASK_QUEUE="batchsize-$size-$$"
	bin/worker >/tmp/batch-size-worker.log 2>&1 &
	worker=$!
	times=()
	for run in $(seq "$runs"); do
		code="bs-$size-$run-$$"
		bin/starter load-demo --code "$code" --members "$members" --seed "$run" >/dev/null
		t=$(bin/starter enable "$code" --wait | sed -n 's/^done in \([0-9.]*\)s.*/\1/p')
		times+=("$t")
	done
	kill $worker; wait $worker 2>/dev/null || true
	median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
	echo "BATCH_SIZE=$size members=$members runs: ${times[*]} median ${median}s"
done
