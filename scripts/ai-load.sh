#!/usr/bin/env bash
# AI insight load: a fresh event of N members matched by the real worker
# against the local fake model server at a fixed latency per call, then the
# same event re-matched (every member re-enqueued) to show the cache. It
# reports the seconds from enable to every member listed (the lists never
# wait for the model) and to 99% and 100% AI insights (the backfill).
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
share() { psql "$DATABASE_URL" -qAtc "SELECT count(*) FILTER (WHERE insight_source = 'ai') || ' ' || count(*) FROM matches m JOIN events e ON e.id = m.event_id WHERE e.code = '$code'"; }
now() { date +%s.%N; }
# Seconds from $1 until at least $2 (a fraction) of the event's matches have AI insights.
until_share() {
  while read -r ai all < <(share); [ "$all" -eq 0 ] || [ "$(echo "$ai < $2 * $all" | bc)" -eq 1 ]; do
    if [ "$(echo "$(now) - $1 > 600" | bc)" -eq 1 ]; then echo "not within 600"; return; fi
    sleep 0.2
  done
  echo "$(now) - $1" | bc
}
calls() { psql "$DATABASE_URL" -qAtc "SELECT coalesce(sum(calls), 0) FROM matchmaking_ai_backfill b JOIN events e ON e.id = b.event_id WHERE e.code = '$code'"; }

t0=$(now)
first=$(bin/starter enable "$code" --wait --timeout 10m | tail -1)
listed=$(echo "$(now) - $t0" | bc)
ai99=$(until_share "$t0" 0.99)
ai100=$(until_share "$t0" 1)
calls1=$(calls)

psql "$DATABASE_URL" -qAtc "SELECT enqueue_event_matchmaking(id, 3) FROM events WHERE code = '$code'" >/dev/null
t1=$(now)
second=$(bin/starter enable "$code" --wait --timeout 10m | tail -1)
relisted=$(echo "$(now) - $t1" | bc)
read -r aiRows allRows < <(share)
calls2=$(( $(calls) - calls1 ))

echo "members=$members latency=$latency"
echo "first match:  $first"
echo "  every member listed ${listed}s after enable; >=99% AI after ${ai99}s, 100% after ${ai100}s; $calls1 model calls"
echo "re-match:     $second"
echo "  every member listed ${relisted}s after enable; $aiRows of $allRows insights AI (cache), $calls2 model calls"
