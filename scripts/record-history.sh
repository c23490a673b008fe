#!/usr/bin/env bash
# Records one workflow history of the current worker for the replay tests:
# a dev server of its own and two workers, a 2,500-member event matched in
# a batch of 2,100 (scored in shards) and one of 400 (regular activities), newcomers one at
# a time (small batches, local activities), a profile edit, two deletes,
# pause and resume, disable. Writes workflows/testdata/$1.json.
#
#   scripts/record-history.sh v2-fanout-local-steps-newcomers-edit-delete-pause-disable
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: $0 <file name without .json>}"
out="workflows/testdata/$name.json"

port=7299
# shellcheck source=scripts/record-env.sh
. scripts/record-env.sh
bin/starter load-demo --code record --members 2500 --seed 3
# Two workers: shards are used only when more than one polls their queue.
BATCH_SIZE=2100 MAX_RUNTIME_MS=45000 bin/worker >"$work/worker.log" 2>&1 &
worker=$!
BATCH_SIZE=2100 MAX_RUNTIME_MS=45000 bin/worker >"$work/worker2.log" 2>&1 &
worker2=$!
sleep 2
bin/starter enable record --wait --timeout 2m

sql() { psql -h 127.0.0.1 -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
event=$(sql "SELECT id FROM events WHERE code = 'record'")
drained() {
	for _ in $(seq 100); do
		[ "$(sql "SELECT count(*) FROM matchmaking_queue WHERE event_id = '$event'")" = 0 ] && return 0
		sleep 0.1
	done
	echo "queue not drained"; exit 1
}
for k in 1 2 3; do
	sql "INSERT INTO all_events_members (event_id, user_id, display_name, interests, looking_for, offering)
	     VALUES ('$event', gen_random_uuid(), 'Newcomer $k', ARRAY['ai','climate'], ARRAY['hiring'], ARRAY['mentoring'])"
	sleep 0.3
	drained
done
sql "UPDATE all_events_members SET interests = ARRAY['robotics'] WHERE event_id = '$event'
     AND user_id = (SELECT user_id FROM all_events_members WHERE event_id = '$event' ORDER BY user_id LIMIT 1)"
sleep 0.3
drained
sql "DELETE FROM all_events_members WHERE event_id = '$event'
     AND user_id IN (SELECT user_id FROM all_events_members WHERE event_id = '$event' ORDER BY user_id DESC LIMIT 2)"
sleep 0.3
drained
bin/starter pause record
bin/starter resume record
bin/starter disable record
sleep 1

bin/temporal workflow show --address "$TEMPORAL_ADDRESS" --workflow-id "matchmaking-$event" --output json >"$out"
# Histories carry IDs and counts only.
if grep -qi "newcomer\|robotics\|climate" "$out"; then
	echo "$out holds profile text"; exit 1
fi
echo "wrote $out ($(grep -c '"eventType"' "$out") events)"
