#!/usr/bin/env bash
# What the staging and commit writes cost PostgreSQL, timed in a scratch
# database on the server of BENCH_DATABASE_URL (default: local, as the
# tests use): 150,000 match-shaped rows written into a copy of the staging
# table with its old key to the batches, without the key, and unlogged
# (migration 013); then into matches with and without its key to events;
# then a batch's insert into matches plainly and with the conflict clause
# CommitBatch adds when it kept rows. Each insert is committed and timed
# with its commit; each runs ROUNDS times (default 3), in turn: read
# medians. Drops its database at the end.
set -euo pipefail

admin="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
rounds="${ROUNDS:-3}"
db="mm_write_costs_$$"
psql -qX "$admin" -c "CREATE DATABASE $db"
trap 'psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
url="${admin%/*}/$db"
case "$admin" in *\?*) url="$url?${admin#*\?}" ;; esac

psql -qX "$url" <<'SQL'
CREATE TABLE batches (token text PRIMARY KEY);
INSERT INTO batches VALUES ('t');
CREATE TABLE events (id uuid PRIMARY KEY);
INSERT INTO events VALUES ('e0000000-0000-4000-8000-000000000001');
CREATE TABLE rows AS
SELECT 't'::text AS token, gen_random_uuid() AS user_id, gen_random_uuid() AS matched_user_id, r::smallint AS rank,
       0.5::real AS score,
       '{"shared_interests":["AI","Fintech"],"they_offer":["Mentoring"],"you_offer":["Hiring"],"same_industry":"Software","shared_bio_terms":["startup","growth"],"score":0.53}'::jsonb AS reasons,
       'You and Alex Johnson both care about AI and Fintech; Alex offers Mentoring, which you are looking for.'::text AS insight,
       'fallback'::text AS insight_source
FROM generate_series(1, 50000), generate_series(1, 3) r;
CREATE TABLE staged_keyed (token text NOT NULL REFERENCES batches, user_id uuid NOT NULL, matched_user_id uuid NOT NULL,
    rank smallint NOT NULL, score real NOT NULL, reasons jsonb NOT NULL, insight text, insight_source text,
    PRIMARY KEY (token, user_id, rank));
CREATE TABLE staged_logged (LIKE staged_keyed INCLUDING ALL);
CREATE UNLOGGED TABLE staged_unlogged (LIKE staged_keyed INCLUDING ALL);
CREATE TABLE matches_keyed (
    event_id uuid NOT NULL REFERENCES events, user_id uuid NOT NULL, matched_user_id uuid NOT NULL,
    rank smallint NOT NULL, score real NOT NULL, reasons jsonb NOT NULL, insight text NOT NULL, insight_source text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, user_id, rank), UNIQUE (event_id, user_id, matched_user_id));
CREATE INDEX ON matches_keyed (event_id, matched_user_id);
CREATE TABLE matches_unkeyed (LIKE matches_keyed INCLUDING ALL);
SQL

# time_insert LABEL TABLE SQL: runs SQL after a checkpoint and commits it,
# prints the insert and its commit (where a logged table waits for the
# write-ahead log), then empties TABLE.
time_insert() {
	local ms
	ms=$(psql -qX "$url" -c "CHECKPOINT" -c '\timing on' -c "BEGIN" -c "$3" -c "COMMIT" |
		awk '/^Time:/ {n++; if (n >= 2) sum += $2} END {printf "%.0f", sum}')
	psql -qX "$url" -c "TRUNCATE $2"
	printf '%-48s %6s ms\n' "$1" "$ms"
}

cols="user_id, matched_user_id, rank, score, reasons, insight, insight_source"
for round in $(seq "$rounds"); do
	echo "round $round"
	time_insert "staging, with the key to the batches" staged_keyed "INSERT INTO staged_keyed SELECT * FROM rows"
	time_insert "staging, without the key" staged_logged "INSERT INTO staged_logged SELECT * FROM rows"
	time_insert "staging, unlogged (migration 013)" staged_unlogged "INSERT INTO staged_unlogged SELECT * FROM rows"
	time_insert "matches, with the key to events" matches_keyed \
		"INSERT INTO matches_keyed (event_id, $cols) SELECT 'e0000000-0000-4000-8000-000000000001', $cols FROM rows"
	time_insert "matches, without it" matches_unkeyed \
		"INSERT INTO matches_unkeyed (event_id, $cols) SELECT 'e0000000-0000-4000-8000-000000000001', $cols FROM rows"
	time_insert "matches, ON CONFLICT (event_id, user_id, rank)" matches_keyed \
		"INSERT INTO matches_keyed (event_id, $cols) SELECT 'e0000000-0000-4000-8000-000000000001', $cols FROM rows ON CONFLICT (event_id, user_id, rank) DO NOTHING"
done
