package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/internal/deploy"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

func TestFindEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Event(1, true)
	e.Event(2, false)
	// A code that looks like a UUID but is not any event's id.
	e.Exec(`INSERT INTO events (id, code, name) VALUES ($1, $2, 'Odd')`, ev(3), ev(9))

	for _, tc := range []struct{ ref, wantID, wantCode string }{
		{"ev-1", ev(1), "ev-1"},
		{"  ev-2\n", ev(2), "ev-2"},
		{ev(2), ev(2), "ev-2"},
		{strings.ToUpper(ev(1)), ev(1), "ev-1"},
		{ev(9), ev(3), ev(9)},
	} {
		got, err := e.st.FindEvent(e.Ctx, tc.ref)
		if err != nil {
			t.Errorf("FindEvent(%q): %v", tc.ref, err)
			continue
		}
		if got.ID != tc.wantID || got.Code != tc.wantCode {
			t.Errorf("FindEvent(%q) = %+v, want id %s code %s", tc.ref, got, tc.wantID, tc.wantCode)
		}
	}
	got, err := e.st.FindEvent(e.Ctx, "ev-1")
	if err != nil || got != (store.Event{ID: ev(1), Code: "ev-1", Name: "Event 1", MatchmakingEnabled: true}) {
		t.Errorf("FindEvent(ev-1) = %+v, %v", got, err)
	}
	for _, ref := range []string{"nope", ev(7), "", "   "} {
		if _, err := e.st.FindEvent(e.Ctx, ref); !errors.Is(err, store.ErrEventNotFound) {
			t.Errorf("FindEvent(%q): %v, want ErrEventNotFound", ref, err)
		}
	}
}

func TestEnsureEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, err := e.st.EnsureEvent(e.Ctx, "conf", "Conference")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.st.EnsureEvent(e.Ctx, "conf", "Renamed")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.Name != "Conference" || a.MatchmakingEnabled {
		t.Errorf("EnsureEvent twice: %+v then %+v", a, b)
	}
	if n := e.Int(`SELECT count(*) FROM events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func TestEnableEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	wantStrings(t, "queue of a disabled event", e.queueRows(event))

	n, err := e.st.EnableEvent(e.Ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("EnableEvent returned %d, want 3", n)
	}
	if got, _ := e.st.FindEvent(e.Ctx, event); !got.MatchmakingEnabled {
		t.Error("event not enabled")
	}
	wantStrings(t, "queue after enable", sorted(e.queueRows(event)), "1:3", "2:3", "3:3")

	before := e.queueFull(event)
	if n, err := e.st.EnableEvent(e.Ctx, event); err != nil || n != 3 {
		t.Errorf("EnableEvent again: %d, %v; want 3", n, err)
	}
	wantStrings(t, "queue after enabling again", e.queueFull(event), before...)
}

func TestInsertMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	first := []attendee.Profile{
		{UserID: uid(1), DisplayName: "Ada", Company: "Acme", JobTitle: "CTO", Industry: "Tech",
			Interests: []string{"go", "sql"}, LookingFor: []string{"hires"}, Offering: []string{"advice"}, Bio: "hi",
			AttendeeType: "buyer", Languages: []string{"en", "de"}},
		{UserID: uid(2), DisplayName: "Bob"},
	}
	n, err := e.st.InsertMembers(e.Ctx, event, first)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("inserted %d, want 2", n)
	}
	wantStrings(t, "stored members", e.Strings(`SELECT concat_ws('|', `+short("user_id")+`, display_name,
		coalesce(company, 'NULL'), coalesce(job_title, 'NULL'), coalesce(industry, 'NULL'),
		interests::text, looking_for::text, offering::text, bio, coalesce(attendee_type, 'NULL'), coalesce(languages::text, 'NULL'))
		FROM all_events_members WHERE event_id = $1 ORDER BY user_id`, event),
		"1|Ada|Acme|CTO|Tech|{go,sql}|{hires}|{advice}|hi|buyer|{en,de}", "2|Bob|NULL|NULL|NULL|{}|{}|{}||NULL|NULL")
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:0", "2:0")
	queueBefore := e.queueFull(event)

	second := []attendee.Profile{
		{UserID: uid(2), DisplayName: "Robert"},
		{UserID: uid(3), DisplayName: "Cy"},
	}
	n, err = e.st.InsertMembers(e.Ctx, event, second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("inserted %d of one new and one existing member, want 1", n)
	}
	wantStrings(t, "names", e.Strings(`SELECT display_name FROM all_events_members WHERE event_id = $1 ORDER BY user_id`, event),
		"Ada", "Bob", "Cy")
	wantStrings(t, "queue of existing members", e.queueFull(event)[:2], queueBefore...)
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:0", "2:0", "3:0")

	if n, err := e.st.InsertMembers(e.Ctx, event, nil); err != nil || n != 0 {
		t.Errorf("InsertMembers(nil): %d, %v", n, err)
	}
}

func TestEventsWithClaimableWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	free := e.Event(1, false)
	leased := e.Event(2, false)
	expired := e.Event(3, false)
	disabled := e.Event(4, false)
	e.Event(5, true) // enabled, empty queue
	mixed := e.Event(6, false)
	e.queue(free, 1, 0, 0)
	e.queue(leased, 1, 0, 0)
	e.queue(expired, 1, 0, 0)
	e.queue(disabled, 1, 0, 0)
	e.queue(mixed, 1, 0, 0)
	e.queue(mixed, 2, 0, 0)
	e.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id <> $1`, disabled)
	e.claim(leased, "l", 10)
	e.claim(expired, "x", 10)
	e.expire("x")
	e.claim(mixed, "m", 1)

	got, err := e.st.EventsWithClaimableWork(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{free, expired, mixed}; !slices.Equal(got, want) {
		t.Errorf("EventsWithClaimableWork = %v, want %v", got, want)
	}
}

func TestQueueDepthAndMatchCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3)
	e.Match(event, 1, 2, 1)
	e.Match(event, 1, 3, 2)
	e.Match(event, 2, 1, 1)
	e.claim(event, "t", 1)
	if n, err := e.st.QueueDepth(e.Ctx, event); err != nil || n != 3 {
		t.Errorf("QueueDepth: %d, %v; want 3", n, err)
	}
	c, err := e.st.MatchCounts(e.Ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if c != (store.EventMatchCounts{Members: 3, MembersMatched: 2, Rows: 3, Queued: 3}) {
		t.Errorf("MatchCounts = %+v", c)
	}
	views, err := e.st.SampleMatches(e.Ctx, event, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].UserName != "M1" || views[0].MatchedName != "M2" || views[1].Rank != 2 ||
		views[1].MatchedTitle != "Title 3" || views[1].InsightSource != "fallback" {
		t.Errorf("SampleMatches = %+v", views)
	}
}

func TestParsePoolConfig(t *testing.T) {
	t.Parallel()
	const base = "postgres://u@db.example.com:5432/app?sslmode=disable"
	for _, tc := range []struct {
		name, url   string
		mode        pgx.QueryExecMode
		timeouts    bool // the session defaults are startup parameters
		transaction bool
	}{
		{"direct", base, pgx.QueryExecModeCacheStatement, true, false},
		{"pgbouncer=true", base + "&pgbouncer=true", pgx.QueryExecModeExec, false, true},
		{"Supabase transaction pooler port", "postgres://u@aws-0-eu.pooler.supabase.com:6543/postgres", pgx.QueryExecModeExec, false, true},
		{"port 6543 said not to be a pooler", "postgres://u@h:6543/app?pgbouncer=false", pgx.QueryExecModeCacheStatement, true, false},
		{"Supabase session pooler port", "postgres://u@aws-0-eu.pooler.supabase.com:5432/postgres", pgx.QueryExecModeCacheStatement, true, false},
		{"exec mode chosen in the URL", base + "&pgbouncer=true&default_query_exec_mode=simple_protocol", pgx.QueryExecModeSimpleProtocol, false, true},
		{"keyword/value form", "host=h port=6543 user=u dbname=app", pgx.QueryExecModeExec, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := store.ParsePoolConfig("DATABASE_URL", tc.url, "matchmaker-test")
			if err != nil {
				t.Fatal(err)
			}
			params := cfg.ConnConfig.RuntimeParams
			if got := cfg.ConnConfig.DefaultQueryExecMode; got != tc.mode {
				t.Errorf("exec mode %v, want %v", got, tc.mode)
			}
			if _, sent := params["pgbouncer"]; sent {
				t.Error("the pgbouncer parameter would be sent to the server, which a pooler refuses")
			}
			if params["application_name"] != "matchmaker-test" {
				t.Errorf("application_name %q", params["application_name"])
			}
			for _, name := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
				if _, sent := params[name]; sent != tc.timeouts {
					t.Errorf("%s sent as a startup parameter: %v, want %v", name, sent, tc.timeouts)
				}
			}
			p, err := store.DetectPooler(tc.url)
			if err != nil || p.Transaction != tc.transaction || (p.Transaction && p.Reason == "") {
				t.Errorf("DetectPooler = %+v, %v; want transaction %v with a reason", p, err, tc.transaction)
			}
		})
	}

	// What the URL sets is kept, pooler or not.
	cfg, err := store.ParsePoolConfig("DATABASE_URL", base+"&pgbouncer=true&statement_timeout=5s&application_name=web", "x")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.ConnConfig.RuntimeParams; p["statement_timeout"] != "5s" || p["application_name"] != "web" {
		t.Errorf("URL settings not kept: %v", p)
	}
	cfg, err = store.ParsePoolConfig("DATABASE_URL", base+"&statement_timeout=5s", "x")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.ConnConfig.RuntimeParams; p["statement_timeout"] != "5s" || p["lock_timeout"] != "20s" {
		t.Errorf("direct: URL settings not kept or defaults missing: %v", p)
	}

	for _, bad := range []string{base + "&pgbouncer=maybe", "postgres://u:secret@h:5432/db?sslmode=nonsense"} {
		_, err := store.ParsePoolConfig("DATABASE_LISTEN_URL", bad, "x")
		if err == nil || !strings.Contains(err.Error(), "DATABASE_LISTEN_URL") || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParsePoolConfig(%q): %v, want an error naming DATABASE_LISTEN_URL without the password", bad, err)
		}
	}
}

// workerRole creates a LOGIN role for the test, dropped when it ends. Call
// it before the test's database is made: cleanups run last-in first-out,
// so the role is dropped after the database, and with it every grant.
func workerRole(t *testing.T) string {
	t.Helper()
	testenv.RequireIntegration(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	role := "mm_test_worker_" + hex.EncodeToString(b)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, testenv.AdminURL())
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP ROLE IF EXISTS `+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	return role
}

// grantWorker runs GrantWorker over a connection of the database's owner.
func grantWorker(t *testing.T, e *env, role string) store.WorkerGrant {
	t.Helper()
	conn, err := pgx.Connect(e.Ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.Ctx)
	g, err := store.GrantWorker(e.Ctx, conn, role)
	if err != nil {
		t.Fatalf("GrantWorker(%s): %v", role, err)
	}
	return g
}

// openAs opens a pool on the env's database as role, through ConnectEnv.
func openAs(t *testing.T, e *env, role, hostPort, extra string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	if hostPort != "" {
		u.Host = hostPort
	}
	if extra != "" {
		u.RawQuery += "&" + extra
	}
	pool, err := store.ConnectEnv(e.Ctx, "DATABASE_URL", u.String(), "matchmaker-test")
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// exerciseWorkerPaths runs every query the worker makes, through st, on an
// event it creates with e's own connection: the listener's poll, two batches
// (one committed after a member left while it was scored, one quarantining a
// member and released), the insight cache. Each call must succeed.
func exerciseWorkerPaths(t *testing.T, e *env, st *store.Store, n int) {
	t.Helper()
	ctx := e.Ctx
	event := e.Event(n, true)
	e.members(event, 1, 2, 3, 4, 5, 6)
	// A NULL tag makes the profile read call matchmaking_clean_tags.
	e.Exec(`UPDATE all_events_members SET interests = '{go,NULL}' WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := st.FindEvent(ctx, event)
	must("FindEvent", err)
	ids, err := st.EventsWithClaimableWork(ctx)
	must("EventsWithClaimableWork", err)
	if !slices.Contains(ids, event) {
		t.Fatalf("EventsWithClaimableWork = %v, want %s among them", ids, event)
	}
	_, err = st.QueueDepth(ctx, event)
	must("QueueDepth", err)
	// Exclusions and rules are read through their RLS policies: without
	// them the worker would read no rows, and match excluded pairs.
	e.Exec(`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'declined')`,
		event, uid(1), uid(6))
	e.Exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'a', 'b')`, event)

	token := fmt.Sprintf("tok-%d-1", n)
	claimed, err := st.ClaimBatch(ctx, event, token, 100, time.Minute)
	must("ClaimBatch", err)
	if claimed != 6 {
		t.Fatalf("claimed %d, want 6", claimed)
	}
	snap, err := st.LoadSnapshot(ctx, event, token, store.NoCache)
	must("LoadSnapshot", err)
	if len(snap.Rules) != 1 {
		t.Fatalf("rules read: %v, want the event's one", snap.Rules)
	}
	for _, m := range snap.Members {
		if m.UserID == uid(6) && !slices.Equal(m.Excluded, []string{uid(1)}) {
			t.Fatalf("member 6 read with exclusions %v, want member 1's", m.Excluded)
		}
	}
	rows, insights := stagedRows([2]int{1, 2}, [2]int{2, 1}, [2]int{3, 5}, [2]int{4, 3}, [2]int{5, 3}, [2]int{6, 4})
	_, err = st.StageMatches(ctx, token, snap.Version, uids(1, 2, 3, 4, 5, 6), rows, false)
	must("StageMatches", err)
	_, err = st.PendingInsights(ctx, event, token)
	must("PendingInsights", err)
	must("SaveInsights", st.SaveInsights(ctx, token, insights))
	_, _, err = st.ApplyFallbackInsights(ctx, token)
	must("ApplyFallbackInsights", err)
	must("CacheInsights", st.CacheInsights(ctx, "m", "v1", []store.CachedPair{{FirstHash: "a", SecondHash: "b", ForFirst: "x", ForSecond: "y"}}))
	cached, err := st.CachedInsights(ctx, "m", "v1", []string{"a"}, []string{"b"})
	must("CachedInsights", err)
	if len(cached) != 1 {
		t.Fatalf("CachedInsights = %v", cached)
	}
	// Member 5 leaves while the batch is scored: the commit sets aside the
	// lists that name them and enqueues their owners again itself.
	e.Exec(`DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, event, uid(5))
	res, err := st.CommitBatch(ctx, event, token)
	must("CommitBatch", err)
	if res.ListsDeferred == 0 {
		t.Fatalf("CommitBatch = %+v, want lists deferred by the departure", res)
	}

	token = fmt.Sprintf("tok-%d-2", n)
	if claimed, err = st.ClaimBatch(ctx, event, token, 100, time.Minute); err != nil || claimed == 0 {
		t.Fatalf("second ClaimBatch: %d, %v", claimed, err)
	}
	snap, err = st.LoadSnapshot(ctx, event, token, store.NoCache)
	must("LoadSnapshot", err)
	rows, _ = stagedRows([2]int{3, 4}, [2]int{4, 3})
	_, err = st.StageMatches(ctx, token, snap.Version, uids(3, 4), rows, false)
	must("StageMatches", err)
	_, err = st.FindRefusedMembers(ctx, event, token)
	must("FindRefusedMembers", err)
	_, err = st.QuarantineMembers(ctx, event, []store.RefusedMember{{UserID: uid(6), Reason: "test"}})
	must("QuarantineMembers", err)
	_, err = st.ReleaseBatch(ctx, token, "test")
	must("ReleaseBatch", err)
	must("RecordAIBatch", st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_1", Requests: 3, ListsUpTo: time.Now()}))
	_, _, err = st.OpenAIBatch(ctx, event)
	must("OpenAIBatch", err)
	_, _, err = st.FinishAIBatch(ctx, event, "batch_1", store.AIBatchCounts{Answered: 3}, store.BackfillUsage{Calls: 3})
	must("FinishAIBatch", err)
}

// TestGrantWorker: the worker's whole SQL runs as a role that has only what
// grant-worker gave it, which is exactly the table below, through RLS, and
// nothing to create, drop or read the schema's version.
func TestGrantWorker(t *testing.T) {
	t.Parallel()
	role := workerRole(t)
	e := newEnv(t)
	g := grantWorker(t, e, role)

	want := map[string][]string{
		"events":                     {"SELECT"},
		"all_events_members":         {"SELECT"},
		"match_exclusions":           {"SELECT"},
		"match_rules":                {"SELECT"},
		"matches":                    {"SELECT", "INSERT", "UPDATE", "DELETE"},
		"matchmaking_queue":          {"SELECT", "INSERT", "UPDATE", "DELETE"},
		"matchmaking_event_state":    {"SELECT", "INSERT", "UPDATE"},
		"matchmaking_batches":        {"SELECT", "INSERT", "UPDATE"},
		"matchmaking_staged_matches": {"SELECT", "INSERT", "UPDATE", "DELETE"},
		"matchmaking_departures":     {"SELECT", "DELETE"},
		"matchmaking_quarantine":     {"SELECT", "INSERT", "UPDATE"},
		"matchmaking_insight_cache":  {"SELECT", "INSERT"},
		"matchmaking_ai_backfill":    {"SELECT", "INSERT", "UPDATE"},
		"matchmaking_ai_skips":       {"SELECT", "INSERT", "UPDATE", "DELETE"},
		"matchmaking_ai_batches":     {"SELECT", "INSERT", "UPDATE"},
	}
	// Tables of migration 006, which a build may not have yet.
	for table, privileges := range map[string][]string{
		"matchmaking_change_log":   {"SELECT", "INSERT", "DELETE"},
		"matchmaking_batch_shards": {"SELECT", "INSERT", "UPDATE", "DELETE"},
	} {
		if e.Int(`SELECT count(*) FROM pg_tables WHERE tablename = $1`, table) == 1 {
			want[table] = privileges
		}
	}
	for table, privileges := range want {
		if !slices.Equal(g.Tables[table], privileges) {
			t.Errorf("%s: %v, want %v", table, g.Tables[table], privileges)
		}
	}
	for table, privileges := range g.Tables {
		if _, ok := want[table]; !ok {
			t.Errorf("%s: %v, want nothing", table, privileges)
		}
	}
	if wantFns := []string{"matchmaking_clean_tags(text[],integer,integer)", "matchmaking_enqueue_rows(uuid,uuid[],integer)"}; !slices.Equal(g.Functions, wantFns) {
		t.Errorf("functions %v, want %v", g.Functions, wantFns)
	}
	var all []string
	for table := range want {
		if !slices.Contains([]string{"events", "all_events_members", "match_exclusions", "match_rules"}, table) {
			all = append(all, table)
		}
	}
	slices.Sort(all)
	policy := "matchmaking_worker_" + role
	wantStrings(t, "policies", g.Policies,
		policy+" for ALL on "+strings.Join(all, ", "),
		policy+" for SELECT on all_events_members, events, match_exclusions, match_rules")
	wantStrings(t, "role settings", g.Settings, "idle_in_transaction_session_timeout=10s", "lock_timeout=20s", "statement_timeout=30s")
	if len(g.Notes) != 0 {
		t.Errorf("notes: %v", g.Notes)
	}

	// Again: the same.
	again := grantWorker(t, e, role)
	if fmt.Sprint(again) != fmt.Sprint(g) {
		t.Errorf("second run:\n%+v\nfirst:\n%+v", again, g)
	}

	pool := openAs(t, e, role, "", "")
	exerciseWorkerPaths(t, e, store.New(pool), 1)

	for _, refused := range []string{
		`CREATE TABLE public.mine (x int)`,
		`CREATE FUNCTION public.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`DROP TABLE matchmaking_queue`,
		`ALTER TABLE matches DISABLE ROW LEVEL SECURITY`,
		`TRUNCATE matchmaking_queue`,
		`UPDATE events SET name = 'x'`,
		`INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ('` + ev(1) + `', '` + uid(9) + `', 'x')`,
		`SELECT count(*) FROM matchmaking_schema_version`,
		`SELECT enqueue_event_matchmaking('` + ev(1) + `', 3)`,
	} {
		_, err := pool.Exec(e.Ctx, refused)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "42P01") {
			t.Errorf("as the worker: %s: %v, want it refused", refused, err)
		}
	}

	// Through a transaction-mode pooler (told by pgbouncer=true) the timeouts
	// are not startup parameters: the role's settings give them.
	pooled := openAs(t, e, role, "", "pgbouncer=true")
	var timeout string
	if err := pooled.QueryRow(e.Ctx, `SELECT current_setting('statement_timeout')`).Scan(&timeout); err != nil || timeout != "30s" {
		t.Errorf("statement_timeout of the worker's role without startup parameters: %q, %v; want 30s", timeout, err)
	}

	conn, err := pgx.Connect(e.Ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.Ctx)
	if _, err := store.GrantWorker(e.Ctx, conn, "mm_no_such_role"); !errors.Is(err, store.ErrRoleNotFound) {
		t.Errorf("GrantWorker of a missing role: %v", err)
	}
	if _, err := store.GrantWorker(e.Ctx, conn, "postgres"); err == nil {
		t.Error("GrantWorker of the role running it succeeded")
	}
	// A table this build does not know stops it.
	e.Exec(`CREATE TABLE matchmaking_future (x int)`)
	if _, err := store.GrantWorker(e.Ctx, conn, role); err == nil || !strings.Contains(err.Error(), "matchmaking_future") {
		t.Errorf("GrantWorker with an unknown engine table: %v", err)
	}
}

// TestStoreThroughTransactionPooler runs the worker's and the operator's
// query paths through pgbouncer in transaction mode, concurrently, after
// showing that the pooler really breaks pgx's prepared-statement cache.
func TestStoreThroughTransactionPooler(t *testing.T) {
	t.Parallel()
	role := workerRole(t)
	e := newEnv(t)
	grantWorker(t, e, role)
	admin, err := pgx.ParseConfig(testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	bouncer := deploy.StartPgBouncer(t, admin.Host, int(admin.Port), 2, admin.User, role)
	via := fmt.Sprintf("%s:%d", bouncer.Host, bouncer.Port)
	e.Event(9, true)

	// The control: with the statement cache (pgx's default) concurrent
	// clients fail here, or the pooler is not in transaction mode and the
	// rest proves nothing.
	cached := store.New(openAs(t, e, admin.User, via, "pgbouncer=true&default_query_exec_mode=cache_statement"))
	if errs := hammer(e, cached, ev(9)); len(errs) == 0 {
		t.Fatal("pgx's statement cache works through this pgbouncer: it is not a transaction-mode pooler")
	} else {
		t.Logf("with the statement cache: %d failures, such as: %v", len(errs), errs[0])
	}

	// Without pgbouncer=true the session defaults go as startup parameters,
	// which pgbouncer refuses: the error says what to add.
	if _, err := store.ConnectEnv(e.Ctx, "DATABASE_URL", strings.Replace(bouncer.URL(role, databaseName(t, e)), "pgbouncer=true", "pgbouncer=false", 1), "x"); err == nil ||
		!strings.Contains(err.Error(), "add pgbouncer=true to DATABASE_URL") {
		t.Errorf("connecting through pgbouncer without pgbouncer=true: %v, want a hint to add it", err)
	}

	worker := store.New(openAs(t, e, role, via, "pgbouncer=true"))
	exerciseWorkerPaths(t, e, worker, 1)
	if errs := hammer(e, worker, ev(9)); len(errs) > 0 {
		t.Errorf("%d concurrent queries failed through the pooler, such as: %v", len(errs), errs[0])
	}

	// The operator's paths (the starter's store calls) through the pooler.
	op := store.New(openAs(t, e, admin.User, via, "pgbouncer=true"))
	ctx := e.Ctx
	evt, err := op.EnsureEvent(ctx, "pooled", "Pooled")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		what string
		run  func() error
	}{
		{"InsertMembers", func() error {
			_, err := op.InsertMembers(ctx, evt.ID, []attendee.Profile{{UserID: uid(1), DisplayName: "A"}, {UserID: uid(2), DisplayName: "B"}})
			return err
		}},
		{"EnableEvent", func() error { _, err := op.EnableEvent(ctx, evt.ID); return err }},
		{"EnqueueEvent", func() error { _, err := op.EnqueueEvent(ctx, evt.ID, store.PriorityRematch); return err }},
		{"EventStatuses", func() error { _, err := op.EventStatuses(ctx, ""); return err }},
		{"EventStatuses(event)", func() error { _, err := op.EventStatuses(ctx, evt.ID); return err }},
		{"EnabledEvents", func() error { _, err := op.EnabledEvents(ctx); return err }},
		{"MatchCounts", func() error { _, err := op.MatchCounts(ctx, evt.ID); return err }},
		{"SampleMatches", func() error { _, err := op.SampleMatches(ctx, evt.ID, 5); return err }},
		{"QuarantinedMembers", func() error { _, err := op.QuarantinedMembers(ctx, ev(1)); return err }},
		{"RetryQuarantined", func() error { _, err := op.RetryQuarantined(ctx, ev(1)); return err }},
		{"ClearQueue", func() error { _, err := op.ClearQueue(ctx, evt.ID); return err }},
		{"DisableEvent", func() error { _, err := op.DisableEvent(ctx, evt.ID); return err }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Errorf("%s through the pooler: %v", s.what, err)
		}
	}
}

// hammer runs a few hundred small queries from 6 clients at once, as 6
// concurrent `starter matches` would, and returns the errors.
func hammer(e *env, st *store.Store, event string) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range 6 {
		wg.Go(func() {
			for range 25 {
				_, err1 := st.FindEvent(e.Ctx, event)
				_, err2 := st.MatchCounts(e.Ctx, event)
				_, err3 := st.SampleMatches(e.Ctx, event, 3)
				if err := errors.Join(err1, err2, err3); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func databaseName(t *testing.T, e *env) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestDisableEventWithTheSQLTrigger: `starter disable` still reports the
// queue it dropped although turning the flag off now drops the queue too
// (migration 007's trigger, deferred to the commit for this reason).
func TestDisableEventWithTheSQLTrigger(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	other := e.Event(2, true)
	e.members(event, 1, 2, 3)
	e.members(other, 1)
	e.Match(event, 1, 2, 1)
	dropped, err := e.st.DisableEvent(e.Ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 3 {
		t.Errorf("DisableEvent dropped %d, want the 3 queued members", dropped)
	}
	wantStrings(t, "queue", e.queueRows(event))
	wantStrings(t, "other event's queue", e.queueRows(other), "1:0")
	wantStrings(t, "matches kept", e.Matches(event), "1>2#1")
}
