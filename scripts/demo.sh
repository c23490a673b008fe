#!/usr/bin/env bash
# make demo: dev server and worker in the background, the demo event loaded,
# enabled, waited for and printed. Safe to run again; `make demo-stop` ends it.
set -euo pipefail
cd "$(dirname "$0")/.."

state=.demo
mkdir -p "$state"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/matchmaking_demo?sslmode=disable}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-localhost:7233}"
members="${DEMO_MEMBERS:-300}"

stop_pid() {
	local file="$state/$1.pid"
	if [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
		kill "$(cat "$file")" && echo "stopped $1"
		for _ in $(seq 50); do kill -0 "$(cat "$file")" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$file"
}

if [ "${1:-}" = stop ]; then
	stop_pid worker
	stop_pid temporal
	exit 0
fi

temporal_up() { bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; }

if temporal_up; then
	echo "Temporal is already running at $TEMPORAL_ADDRESS"
else
	echo "starting the Temporal dev server (log: $state/temporal.log)"
	bin/temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
		--db-filename "$state/temporal.db" --log-level warn >"$state/temporal.log" 2>&1 &
	echo $! >"$state/temporal.pid"
	for _ in $(seq 150); do temporal_up && break; sleep 0.2; done
	temporal_up || { echo "the dev server did not come up; see $state/temporal.log"; exit 1; }
fi

bin/starter migrate --create-database
bin/starter load-demo --code demo --members "$members"

stop_pid worker
echo "starting the worker (log: $state/worker.log)"
bin/worker >"$state/worker.log" 2>&1 &
echo $! >"$state/worker.pid"

if [ -n "${OPENAI_API_KEY:-}" ]; then
	echo "insights: AI, model ${OPENAI_MODEL:-gpt-4o-mini} at ${OPENAI_BASE_URL:-OpenAI} (fallback where it fails)"
else
	echo "insights: deterministic fallback (set OPENAI_API_KEY, and OPENAI_BASE_URL for any OpenAI-compatible endpoint, for AI insights)"
fi
# --rematch: a second run re-matches (cheaply: AI answers are cached), so
# switching OPENAI_API_KEY on or off shows at once.
bin/starter enable demo --rematch --wait --timeout 5m
echo
bin/starter matches demo --members 4
cat <<MSG

Temporal Web UI: http://localhost:8233  (workflow matchmaking-<event uuid> on task queue ${TEMPORAL_TASK_QUEUE:-matchmaking})
The dev server and the worker keep running; stop them with: make demo-stop
MSG
