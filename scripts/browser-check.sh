#!/usr/bin/env bash
# Browser check of the Temporal Web UI: pauses the demo event, opens its
# workflow page in headless Chromium (Debian's, driven by playwright-core),
# saves docs/img/workflow-ui.png and fails unless the page shows the event
# code and "State: Paused". The event is resumed afterwards, pass or fail.
# Reuses a running `make demo`; if it had to start one, it stops it again.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/matchmaking_demo?sslmode=disable}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-localhost:7233}"
code="${EVENT_CODE:-demo}"
ui="${TEMPORAL_UI:-http://localhost:8233}"
screenshot=docs/img/workflow-ui.png
dump=tmp/browser-check

# 1. Debian's Chromium and playwright-core (which downloads no browser).
if [ ! -x /usr/bin/chromium ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
fi
[ -d scripts/browser/node_modules/playwright-core ] ||
	(cd scripts/browser && npm ci --no-audit --no-fund)

# 2. The demo stack: reuse it when the dev server and the worker are up.
started=
if bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 &&
	[ -f .demo/worker.pid ] && kill -0 "$(cat .demo/worker.pid)" 2>/dev/null; then
	echo "reusing the running demo stack"
else
	started=1
	make demo
fi

resume() {
	bin/starter resume "$code" || echo "WARNING: could not resume event $code"
	if [ -n "$started" ]; then make demo-stop; fi
}
trap resume EXIT
bin/starter pause "$code"

# 3-5. Open the workflow page, screenshot it, check its text.
event_id=$(bin/starter status "$code" --output json | node -e \
	'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).events[0].event_id))')
node scripts/browser/check-workflow-ui.mjs \
	"$ui/namespaces/${TEMPORAL_NAMESPACE:-default}/workflows/matchmaking-$event_id" "$code" Paused "$screenshot" "$dump"
