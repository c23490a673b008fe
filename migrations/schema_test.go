package migrations_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/internal/testenv"
)

// db is one test's fresh, migrated database.
type db struct{ *testenv.DB }

func newDB(t *testing.T) *db {
	t.Helper()
	return &db{testenv.NewDB(t)}
}

var (
	uid   = testenv.UID
	uids  = testenv.UIDs
	short = testenv.ShortID

	want = testenv.WantStrings
)

func (d *db) members(event string, ns ...int) {
	d.T.Helper()
	d.Exec(`
		INSERT INTO all_events_members (event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio)
		SELECT $1, u, 'M' || `+short("u")+`, 'Co', 'Dev', 'Tech', '{go}', '{jobs}', '{help}', 'bio'
		FROM unnest($2::uuid[]) AS u`, event, uids(ns...))
}

// queue lists the event's queue as "user:priority", by user.
func (d *db) queue(event string) []string {
	d.T.Helper()
	return d.Strings(`SELECT `+short("user_id")+` || ':' || priority FROM matchmaking_queue
		WHERE event_id = $1 ORDER BY user_id`, event)
}

func TestMemberInsertEnqueuesOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	on := d.Event(1, true)
	off := d.Event(2, false)
	d.members(on, 1, 2)
	d.members(off, 1, 2)
	want(t, "enabled event's queue", d.queue(on), "1:0", "2:0")
	want(t, "disabled event's queue", d.queue(off))
	if n := d.Int(`SELECT count(*) FROM matchmaking_queue WHERE generation <> 1 OR claim_token IS NOT NULL`); n != 0 {
		t.Errorf("%d new queue rows are not fresh", n)
	}
}

func TestProfileChangeEnqueuesPriority2(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	on := d.Event(1, true)
	off := d.Event(2, false)
	d.members(on, 1)
	d.members(off, 1)
	for _, tc := range []struct{ name, set string }{
		{"display_name", `display_name = 'New'`},
		{"company", `company = NULL`},
		{"job_title", `job_title = 'CEO'`},
		{"industry", `industry = 'Retail'`},
		{"interests", `interests = '{go,rust}'`},
		{"looking_for", `looking_for = '{}'`},
		{"offering", `offering = '{help,money}'`},
		{"bio", `bio = 'new bio'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.Exec(`DELETE FROM matchmaking_queue`)
			d.Exec(`UPDATE all_events_members SET ` + tc.set)
			want(t, "enabled event's queue", d.queue(on), "1:2")
			want(t, "disabled event's queue", d.queue(off))
		})
	}

	d.Exec(`DELETE FROM matchmaking_queue`)
	d.Exec(`UPDATE all_events_members SET updated_at = now() + interval '1 hour', created_at = now() - interval '1 day'`)
	want(t, "queue after touching timestamps", d.queue(on))
	d.Exec(`UPDATE all_events_members SET display_name = display_name, interests = interests, company = company`)
	want(t, "queue after a no-op update", d.queue(on))
}

func TestEnableEnqueuesEveryMemberAtPriority3(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	other := d.Event(2, false)
	d.members(event, 1, 2, 3)
	d.members(other, 1)
	d.Exec(`UPDATE events SET name = 'Renamed'`)
	want(t, "queue before enable", d.queue(event))

	d.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id = $1`, event)
	want(t, "queue after enable", d.queue(event), "1:3", "2:3", "3:3")
	want(t, "other event's queue", d.queue(other))

	d.Exec(`DELETE FROM matchmaking_queue`)
	d.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id = $1`, event)
	want(t, "queue after re-setting true", d.queue(event))

	// Created enabled: the insert trigger does the same for members already
	// there (none), and later members come in at 0.
	created := d.Event(3, true)
	d.members(created, 1)
	want(t, "queue of an event created enabled", d.queue(created), "1:0")
}

func TestMemberDelete(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, true)
	d.members(event, 1, 2, 3, 4, 5)
	d.Match(event, 1, 2, 1)
	d.Match(event, 1, 3, 2)
	d.Match(event, 2, 1, 1)
	d.Match(event, 2, 4, 2)
	d.Match(event, 3, 2, 1)
	d.Match(event, 4, 5, 1)
	d.Exec(`DELETE FROM matchmaking_queue WHERE user_id <> $1`, uid(2))
	d.Exec(`INSERT INTO matchmaking_event_state (event_id, version) VALUES ($1, 7)`, event)

	d.Exec(`DELETE FROM all_events_members WHERE user_id = $1`, uid(2))
	want(t, "matches", d.Matches(event), "1>3#2", "4>5#1")
	want(t, "queue (listers of 2 at priority 1)", d.queue(event), "1:1", "3:1")
	if v := d.Int(`SELECT version FROM matchmaking_event_state WHERE event_id = $1`, event); v != 8 {
		t.Errorf("version %d, want 8", v)
	}

	// A lister already queued keeps its higher priority.
	d.Exec(`UPDATE matchmaking_queue SET priority = 3 WHERE user_id = $1`, uid(1))
	d.Match(event, 1, 4, 3)
	d.Exec(`DELETE FROM all_events_members WHERE user_id = $1`, uid(4))
	want(t, "queue after deleting 4", d.queue(event), "1:3", "3:1")
	if v := d.Int(`SELECT version FROM matchmaking_event_state WHERE event_id = $1`, event); v != 9 {
		t.Errorf("version %d, want 9", v)
	}
}

func TestMemberDeleteTogether(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, true)
	d.members(event, 1, 2, 3)
	d.Match(event, 1, 2, 1)
	d.Match(event, 2, 1, 1)
	d.Match(event, 3, 1, 1)
	d.Exec(`DELETE FROM matchmaking_queue`)

	d.Exec(`DELETE FROM all_events_members WHERE user_id = ANY ($1::uuid[])`, uids(1, 2))
	want(t, "matches", d.Matches(event))
	want(t, "queue: only the surviving lister", d.queue(event), "3:1")
	if n := d.Int(`SELECT count(*) FROM matchmaking_event_state`); n != 0 {
		t.Errorf("member delete created %d state rows", n)
	}
}

func TestMemberDeleteInDisabledEventDoesNotEnqueue(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	d.members(event, 1, 2)
	d.Match(event, 1, 2, 1)
	d.Exec(`DELETE FROM all_events_members WHERE user_id = $1`, uid(2))
	want(t, "matches", d.Matches(event))
	want(t, "queue", d.queue(event))
}

func TestEventDeleteCascades(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	gone := d.Event(1, true)
	kept := d.Event(2, true)
	for _, event := range []string{gone, kept} {
		d.members(event, 1, 2)
		d.Match(event, 1, 2, 1)
		d.Exec(`INSERT INTO matchmaking_event_state (event_id, version) VALUES ($1, 3)`, event)
		d.Exec(`INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ($1, $2, $3)`,
			"batch-"+event, event, uids(1))
		d.Exec(`INSERT INTO matchmaking_staged_matches (token, user_id, matched_user_id, rank, score, reasons)
			VALUES ($1, $2, $3, 1, 0.5, '{}')`, "batch-"+event, uid(1), uid(2))
	}
	d.Exec(`DELETE FROM events WHERE id = $1`, gone)

	for _, table := range []string{"all_events_members", "matchmaking_queue", "matches", "matchmaking_event_state", "matchmaking_batches"} {
		if n := d.Int(`SELECT count(*) FROM `+table+` WHERE event_id = $1`, gone); n != 0 {
			t.Errorf("%s: %d rows of the deleted event", table, n)
		}
	}
	if n := d.Int(`SELECT count(*) FROM matchmaking_staged_matches WHERE token = $1`, "batch-"+gone); n != 0 {
		t.Errorf("%d staged rows of the deleted event", n)
	}
	want(t, "other event's members", d.Strings(`SELECT `+short("user_id")+` FROM all_events_members WHERE event_id = $1 ORDER BY 1`, kept), "1", "2")
	want(t, "other event's queue", d.queue(kept), "1:0", "2:0")
	want(t, "other event's matches", d.Matches(kept), "1>2#1")
	if v := d.Int(`SELECT version FROM matchmaking_event_state WHERE event_id = $1`, kept); v != 3 {
		t.Errorf("other event's version %d, want 3", v)
	}
}

// TestStagingIsScratch: the staged lists are unlogged and keyed to no
// batch (migration 013), yet a batch deleted, alone or with others, still
// takes exactly its own staged rows along, and emptying the batches
// empties them.
func TestStagingIsScratch(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	if p := d.Strings(`SELECT relpersistence::text FROM pg_class WHERE oid = 'matchmaking_staged_matches'::regclass`); len(p) != 1 || p[0] != "u" {
		t.Errorf("matchmaking_staged_matches persistence %v, want unlogged (u)", p)
	}
	if n := d.Int(`SELECT count(*) FROM pg_constraint WHERE conrelid = 'matchmaking_staged_matches'::regclass AND contype = 'f'`); n != 0 {
		t.Errorf("matchmaking_staged_matches has %d foreign keys, want none", n)
	}
	event := d.Event(1, true)
	d.members(event, 1, 2, 3)
	for _, token := range []string{"a", "b", "c", "kept"} {
		d.Exec(`INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ($1, $2, $3)`, token, event, uids(1))
		d.Exec(`INSERT INTO matchmaking_staged_matches (token, user_id, matched_user_id, rank, score, reasons)
			SELECT $1, $2, m, r, 0.5, '{}' FROM unnest($3::uuid[]) WITH ORDINALITY AS x (m, r)`, token, uid(1), uids(2, 3))
	}
	d.Exec(`DELETE FROM matchmaking_batches WHERE token = 'a'`)
	d.Exec(`DELETE FROM matchmaking_batches WHERE token IN ('b', 'c')`)
	want(t, "staged rows left", d.Strings(`SELECT token || ':' || rank FROM matchmaking_staged_matches ORDER BY 1`), "kept:1", "kept:2")
	d.Exec(`TRUNCATE matchmaking_batches CASCADE`)
	want(t, "staged rows left after TRUNCATE", d.Strings(`SELECT token FROM matchmaking_staged_matches`))
}

func TestEnqueueKeepsHigherPriorityAndEarlierTime(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	enqueue := func(p int) int64 {
		t.Helper()
		return d.Int(`SELECT matchmaking_enqueue_rows($1, $2::uuid[], $3)`, event, uids(1), p)
	}
	row := func() string {
		t.Helper()
		return d.Strings(`SELECT concat_ws(' ', priority, enqueued_at = '2020-01-01T00:00:00Z', generation)
			FROM matchmaking_queue WHERE event_id = $1`, event)[0]
	}
	if n := enqueue(2); n != 1 {
		t.Errorf("first enqueue affected %d rows", n)
	}
	d.Exec(`UPDATE matchmaking_queue SET enqueued_at = '2020-01-01T00:00:00Z'`)
	want(t, "after first enqueue", []string{row()}, "2 t 1")
	enqueue(1)
	want(t, "after lower priority", []string{row()}, "2 t 2")
	enqueue(3)
	want(t, "after higher priority", []string{row()}, "3 t 3")
	d.Exec(`UPDATE matchmaking_queue SET enqueued_at = now() + interval '1 day'`)
	enqueue(0)
	if n := d.Int(`SELECT count(*) FROM matchmaking_queue WHERE enqueued_at < now() + interval '1 hour' AND generation = 4 AND priority = 3`); n != 1 {
		t.Errorf("a later enqueued_at was not replaced by the earlier one")
	}

	// A claimed row keeps its claim; the generation moves past it.
	d.Exec(`UPDATE matchmaking_queue SET claim_token = 'tok', claimed_generation = generation, lease_expires_at = now() + interval '1 minute'`)
	enqueue(0)
	if n := d.Int(`SELECT count(*) FROM matchmaking_queue WHERE claim_token = 'tok' AND generation = claimed_generation + 1`); n != 1 {
		t.Errorf("enqueue of a claimed row: want claim kept and generation bumped")
	}
}

func TestEnqueueEventMatchmaking(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	empty := d.Event(2, false)
	d.members(event, 1, 2, 3)

	if n := d.Int(`SELECT enqueue_event_matchmaking($1, 1)`, event); n != 3 {
		t.Errorf("enqueue_event_matchmaking returned %d, want 3", n)
	}
	want(t, "queue", d.queue(event), "1:1", "2:1", "3:1")
	if n := d.Int(`SELECT enqueue_event_matchmaking($1, 2)`, event); n != 3 {
		t.Errorf("second enqueue_event_matchmaking returned %d, want 3", n)
	}
	want(t, "queue after second call", d.queue(event), "1:2", "2:2", "3:2")
	if n := d.Int(`SELECT enqueue_event_matchmaking($1, 3)`, empty); n != 0 {
		t.Errorf("enqueue_event_matchmaking of an empty event returned %d", n)
	}

	before := d.Strings(`SELECT concat_ws(' ', user_id, priority, enqueued_at, generation) FROM matchmaking_queue ORDER BY user_id`)
	for _, p := range []any{4, -1, nil} {
		var n *int64
		err := d.Pool.QueryRow(d.Ctx, `SELECT enqueue_event_matchmaking($1, $2)`, event, p).Scan(&n)
		if err == nil {
			t.Errorf("enqueue_event_matchmaking(priority %v) succeeded with %v", p, n)
		} else if !strings.Contains(err.Error(), "priority must be between 0 and 3") {
			t.Errorf("enqueue_event_matchmaking(priority %v): unexpected error %v", p, err)
		}
	}
	want(t, "queue after rejected calls",
		d.Strings(`SELECT concat_ws(' ', user_id, priority, enqueued_at, generation) FROM matchmaking_queue ORDER BY user_id`), before...)
}

func TestQueueStats(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	a := d.Event(1, false)
	b := d.Event(2, false)
	d.Event(3, false) // no queue: no row
	d.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority, enqueued_at, claim_token, lease_expires_at) VALUES
		($1, $3, 0, '2024-01-01T10:00:00Z', NULL, NULL),
		($1, $4, 2, '2024-01-01T09:00:00Z', 'live', now() + interval '1 minute'),
		($1, $5, 2, '2024-01-01T11:00:00Z', 'dead', now() - interval '1 minute'),
		($2, $3, 3, '2024-01-02T00:00:00Z', NULL, NULL)`, a, b, uid(1), uid(2), uid(3))

	got := d.Strings(`SELECT concat_ws(' ', event_id, event_name, queue_size,
			to_char(oldest AT TIME ZONE 'UTC', 'DD HH24'), to_char(newest AT TIME ZONE 'UTC', 'DD HH24'),
			priority_0, priority_1, priority_2, priority_3, in_progress)
		FROM get_matchmaking_queue_stats()`)
	want(t, "stats", got,
		a+" Event 1 3 01 09 01 11 1 0 2 0 1",
		b+" Event 2 1 02 00 02 00 0 0 0 1 0")
}

func TestDetailedQueueInfo(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	other := d.Event(2, false)
	d.members(event, 1, 2, 3)
	d.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority, enqueued_at, claim_token, lease_expires_at, attempts, last_error) VALUES
		($1, $3, 1, '2024-01-01T10:00:00Z', NULL, NULL, 2, 'boom'),
		($1, $4, 3, '2024-01-01T12:00:00Z', 'live', now() + interval '1 minute', 1, NULL),
		($1, $5, 1, '2024-01-01T09:00:00Z', 'dead', now() - interval '1 minute', 1, NULL),
		($1, $6, 1, '2024-01-01T09:00:00Z', NULL, NULL, 0, NULL),
		($2, $3, 3, '2024-01-01T00:00:00Z', NULL, NULL, 0, NULL)`,
		event, other, uid(1), uid(2), uid(3), uid(9))

	got := d.Strings(`SELECT concat_ws(' ', `+short("user_id")+`, coalesce(display_name, '-'), priority,
			to_char(enqueued_at AT TIME ZONE 'UTC', 'HH24'), status, attempts, coalesce(last_error, '-'))
		FROM get_detailed_queue_info($1)`, event)
	want(t, "detailed queue", got,
		"2 M2 3 12 processing 1 -",
		"3 M3 1 09 lease expired 1 -",
		"9 - 1 09 queued 0 -", // not a member (any more): listed without a name
		"1 M1 1 10 queued 2 boom")
}

func TestNotifyOnEnqueue(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	event := d.Event(1, false)
	quiet := d.Event(2, false)

	cfg, err := pgx.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	listener := connect(t, cfg)
	if _, err := listener.Exec(d.Ctx, `LISTEN matchmaking_queue`); err != nil {
		t.Fatal(err)
	}
	next := func(timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(d.Ctx, timeout)
		defer cancel()
		n, err := listener.WaitForNotification(ctx)
		if err != nil {
			return "", err
		}
		if n.Channel != "matchmaking_queue" {
			t.Errorf("notification on channel %q", n.Channel)
		}
		return n.Payload, nil
	}

	// Nothing enqueued: nothing sent.
	d.members(quiet, 1, 2)
	if p, err := next(100 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("notification without an enqueue: %q, %v", p, err)
	}

	// Enabling enqueues three members in one transaction: one notification.
	d.members(event, 1, 2, 3)
	d.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id = $1`, event)
	if p, err := next(5 * time.Second); err != nil || p != event {
		t.Fatalf("notification after enable: %q, %v; want %s", p, err, event)
	}
	if p, err := next(100 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second notification for one transaction: %q, %v", p, err)
	}

	// Re-enqueueing a queued member (generation bump) notifies too.
	d.Exec(`UPDATE all_events_members SET bio = 'changed' WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	if p, err := next(5 * time.Second); err != nil || p != event {
		t.Fatalf("notification after profile change: %q, %v; want %s", p, err, event)
	}
}
