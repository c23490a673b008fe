# Sourced by the record-*-history.sh scripts: a database and a Temporal dev
# server of their own on $port, the settings that point the binaries at
# them, and a cleanup that stops whatever they started ($worker, $worker2,
# $server) and drops the database. Sets work, db, and the exports.
work=$(mktemp -d)
db=matchmaking_record_$$
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
export TEMPORAL_ADDRESS="127.0.0.1:$port"
export TEMPORAL_TASK_QUEUE=record-history
cleanup() {
	[ -n "${worker:-}" ] && kill "$worker" 2>/dev/null || true
	[ -n "${worker2:-}" ] && kill "$worker2" 2>/dev/null || true
	[ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
	wait 2>/dev/null || true
	psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres >/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

make -s build
bin/temporal server start-dev --ip 127.0.0.1 --port "$port" --headless --log-level warn >"$work/temporal.log" 2>&1 &
server=$!
for _ in $(seq 150); do bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break; sleep 0.2; done
bin/starter migrate --create-database
