#!/usr/bin/env bash
# make chaos: runs the chaos suite (e2e TestChaos) against the local
# PostgreSQL and dev servers the tests start, prints its table and splices it
# into docs/RELIABILITY.md between the chaos-table markers. The suite
# restarts PostgreSQL: run it with nothing else using the server.
#
# Settings (environment): CHAOS_KILLS (default 20), CHAOS_SOAK (default 5m),
# CHAOS_PG_RESTART=force (restart even with other clients connected),
# CHAOS_PG_RESTART_CMD (how to restart PostgreSQL; default pg_ctlcluster).
set -uo pipefail
cd "$(dirname "$0")/.."

doc=docs/RELIABILITY.md
table=$(mktemp)
trap 'rm -f "$table" "$table.block"' EXIT

INTEGRATION=1 CHAOS=1 CHAOS_TABLE="$table" TEMPORAL_CLI="${TEMPORAL_CLI:-$PWD/bin/temporal}" \
	"${GO:-go}" test -count=1 -timeout 60m -run '^TestChaos$' ./e2e/ -v
status=$?

if [ -s "$table" ] && grep -q '<!-- chaos-table:begin -->' "$doc"; then
	{
		echo "Last run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores" \
			"($(psql --version 2>/dev/null | awk '{print "PostgreSQL " $3}' || echo PostgreSQL)):" \
			"\`make chaos\` exited $status."
		echo
		cat "$table"
	} >"$table.block"
	awk -v block="$table.block" '
		/<!-- chaos-table:begin -->/ { print; while ((getline line < block) > 0) print line; skip = 1; next }
		/<!-- chaos-table:end -->/ { skip = 0 }
		!skip { print }
	' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
	echo "chaos: table written to $doc"
fi
exit $status
