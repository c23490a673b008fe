#!/usr/bin/env bash
# AI insight load: a fresh event of N members matched by the real worker
# against the local fake model server at a fixed latency per call, then the
# same event re-matched (every member re-enqueued) to show the cache.
# Needs a running dev server (make demo starts one) and the local PostgreSQL.
# usage: scripts/ai-load.sh [members] [latency]
set -euo pipefail
cd "$(dirname "$0")/.."
members="${1:-500}"; latency="${2:-300ms}"
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
go build -o bin/ ./worker ./starter && go build -o "$work/fakeopenai" ./internal/fakeopenai/cmd/fakeopenai

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/matchmaking_aiload?sslmode=disable}"
export TEMPORAL_TASK_QUEUE="aiload-$$" OPENAI_API_KEY=sk-load-test OPENAI_BASE_URL=http://127.0.0.1:18089/v1
bin/starter migrate --create-database >/dev/null
psql "$DATABASE_URL" -qc "TRUNCATE matchmaking_insight_cache" 2>/dev/null || true

"$work/fakeopenai" -addr 127.0.0.1:18089 -latency "$latency" >"$work/fake.log" &
fake=$!
bin/worker >"$work/worker.log" 2>&1 &
sleep 1

code="aiload-$$"
bin/starter load-demo --code "$code" --members "$members" --seed 3 >/dev/null
first=$(bin/starter enable "$code" --wait --timeout 10m | tail -1)
sum() { grep -o "$1=[0-9]*" "$work/worker.log" | cut -d= -f2 | paste -sd+ | bc; }
calls1=$(sum ai_calls); ai1=$(sum ' ai'); hits1=$(sum cache_hits)

psql "$DATABASE_URL" -qAtc "SELECT enqueue_event_matchmaking(id, 3) FROM events WHERE code = '$code'" >/dev/null
second=$(bin/starter enable "$code" --wait --timeout 10m | tail -1)
calls2=$(( $(sum ai_calls) - calls1 )); hits2=$(( $(sum cache_hits) - hits1 ))

fallback=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM matches m JOIN events e ON e.id = m.event_id WHERE e.code = '$code' AND insight_source = 'fallback'")
aiRows=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM matches m JOIN events e ON e.id = m.event_id WHERE e.code = '$code' AND insight_source = 'ai'")
echo "members=$members latency=$latency"
echo "first match:  $first"
echo "  model calls $calls1 for $aiRows AI insights ($((aiRows - calls1)) saved by one call per pair); fallback rows $fallback"
echo "re-match:     $second"
echo "  model calls $calls2, cache hits $hits2"
