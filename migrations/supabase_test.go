package migrations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/migrations"
)

// The web app's tables; every other table in public is the engine's.
// match_exclusions and match_rules are written by the web app (migration
// 009) and have rules of their own (eligibility_rls_test.go).
var appTables = []string{"events", "all_events_members", "matches", "match_exclusions", "match_rules"}

// appTablesWithRLS are the web app's tables that the migrations put under
// row level security.
var appTablesWithRLS = []string{"matches", "match_exclusions", "match_rules"}

// apiRoles are Supabase's Data API roles: the anon key and signed-in users.
var apiRoles = []string{"anon", "authenticated"}

// supabaseDatabase is an empty database set up as a Supabase project is
// before the engine arrives (deploy/postgres/supabase-like.sql: the API
// roles, Supabase's default grants on public, auth.uid()), then migrated.
func supabaseDatabase(t *testing.T) (*pgx.ConnConfig, *pgx.Conn) {
	t.Helper()
	cfg := testenv.EmptyDatabase(t)
	conn := connect(t, cfg)
	setup := testenv.RepoFile(t, "deploy", "postgres", "supabase-like.sql")
	if _, err := conn.Exec(t.Context(), setup); err != nil {
		t.Fatalf("supabase-like setup: %v", err)
	}
	if _, _, err := migrations.Apply(t.Context(), conn); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return cfg, conn
}

// asRole runs sql in a transaction as role, signed in as user sub ("" for
// nobody), and returns its rows as text (each row's columns joined by " ").
// The transaction commits when the statement succeeds.
func asRole(ctx context.Context, conn *pgx.Conn, role, sub, sql string, args ...any) ([]string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claim.sub', $1, true)`, sub); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			fields[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, tx.Commit(ctx)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func strs(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// engineTables lists the tables in public that are not the web app's.
func engineTables(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	tables := strs(t, conn, `SELECT relname::text FROM pg_class
		WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relname = ANY ($1)
		ORDER BY 1`, appTables)
	for _, known := range []string{"matchmaking_queue", "matchmaking_batches", "matchmaking_event_state",
		"matchmaking_schema_version", "matchmaking_staged_matches", "matchmaking_insight_cache",
		"matchmaking_quarantine", "matchmaking_departures"} {
		if !slices.Contains(tables, known) {
			t.Fatalf("engine tables %v lack %s", tables, known)
		}
	}
	return tables
}

// engineFunctions lists every function in public with its argument types.
// A test database has no functions of a web app, so all are the engine's.
func engineFunctions(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	fns := strs(t, conn, `SELECT oid::regprocedure::text FROM pg_proc
		WHERE pronamespace = 'public'::regnamespace ORDER BY 1`)
	for _, known := range []string{"enqueue_event_matchmaking(uuid,integer)", "get_detailed_queue_info(uuid)",
		"get_matchmaking_queue_stats()", "matchmaking_enqueue_rows(uuid,uuid[],integer)"} {
		if !slices.Contains(fns, known) {
			t.Fatalf("engine functions %v lack %s", fns, known)
		}
	}
	return fns
}

// copyTargets are the engine tables the worker, which is not their owner,
// fills with COPY: PostgreSQL refuses COPY FROM to a role that row level
// security applies to, so they keep RLS off and only the revokes protect
// them.
var copyTargets = []string{"matchmaking_staged_matches"}

var tablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

// checkEngineClosed is the rule every engine object must keep, whatever
// migration made it: no privilege of PUBLIC, anon or authenticated on any
// engine table, RLS on, no EXECUTE on any engine function for them, and
// every trigger function a SECURITY DEFINER with an empty search_path.
func checkEngineClosed(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	// Explicit grants, read from the ACLs: PUBLIC is grantee 0. A NULL ACL
	// means the defaults, which for a function include EXECUTE for PUBLIC.
	leaks := strs(t, conn, `
		SELECT c.relname || ': ' || a.privilege_type || ' for ' ||
		       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		FROM pg_class c, aclexplode(c.relacl) a
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S')
		  AND NOT c.relname = ANY ($1)
		  AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated'))
		UNION ALL
		SELECT c.relname || ': row level security is off'
		FROM pg_class c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
		  AND (NOT c.relname = ANY ($1) OR c.relname = ANY ($3)) AND NOT c.relrowsecurity
		  AND NOT c.relname = ANY ($2)
		UNION ALL
		SELECT p.oid::regprocedure || ': EXECUTE for PUBLIC (no ACL: the default)'
		FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proacl IS NULL
		UNION ALL
		SELECT p.oid::regprocedure || ': ' || a.privilege_type || ' for ' ||
		       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		FROM pg_proc p, aclexplode(p.proacl) a
		WHERE p.pronamespace = 'public'::regnamespace
		  AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated'))
		UNION ALL
		SELECT p.oid::regprocedure || ': trigger function is not SECURITY DEFINER with search_path ''''' 
		FROM pg_proc p
		WHERE p.pronamespace = 'public'::regnamespace AND p.prorettype = 'trigger'::regtype
		  AND NOT (p.prosecdef AND p.proconfig = ARRAY['search_path=""'])
		UNION ALL
		SELECT 'matches: ' || a.privilege_type || ' for ' || CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		FROM pg_class c, aclexplode(c.relacl) a
		WHERE c.oid = 'public.matches'::regclass
		  AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) = 'anon'
		       OR pg_get_userbyid(a.grantee) = 'authenticated' AND a.privilege_type <> 'SELECT')
		ORDER BY 1`, appTables, copyTargets, appTablesWithRLS)
	for _, l := range leaks {
		t.Errorf("engine object open: %s (close it in its migration as 007_supabase.sql does)", l)
	}
}

// TestEngineObjectsClosed holds every migration, present and future, to the
// rule, on plain PostgreSQL and on a Supabase-like database whose default
// privileges open everything the migrating role creates.
func TestEngineObjectsClosed(t *testing.T) {
	t.Parallel()
	t.Run("plain PostgreSQL", func(t *testing.T) {
		cfg := testenv.EmptyDatabase(t)
		conn := connect(t, cfg)
		if _, _, err := migrations.Apply(t.Context(), conn); err != nil {
			t.Fatal(err)
		}
		checkEngineClosed(t, conn)
		if n := strs(t, conn, `SELECT policyname::text FROM pg_policies WHERE tablename = ANY ($1)`, appTablesWithRLS); len(n) != 0 {
			t.Errorf("policies on the app's tables without an auth schema: %v", n)
		}
	})
	t.Run("Supabase-like", func(t *testing.T) {
		_, conn := supabaseDatabase(t)
		checkEngineClosed(t, conn)
	})
}

// TestSupabaseAPIRolesReachNothing asserts, table by table and function by
// function, that anon and authenticated (signed in or not) can neither read
// nor change anything of the engine, although Supabase's default privileges
// granted them everything before the migration ran.
func TestSupabaseAPIRolesReachNothing(t *testing.T) {
	t.Parallel()
	_, conn := supabaseDatabase(t)
	ctx := t.Context()
	event := testenv.EventUUID(1)
	exec(t, conn, `INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev', 'Event', true)`, event)
	exec(t, conn, `INSERT INTO all_events_members (event_id, user_id, display_name) SELECT $1, u, 'M' FROM unnest($2::uuid[]) u`,
		event, testenv.UIDs(1, 2))
	exec(t, conn, `INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ('t', $1, '{}')`, event)

	for _, table := range engineTables(t, conn) {
		for _, role := range apiRoles {
			for _, priv := range tablePrivileges {
				var has bool
				if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1, 'public.' || $2, $3)`, role, table, priv).Scan(&has); err != nil {
					t.Fatal(err)
				}
				if has {
					t.Errorf("%s has %s on %s", role, priv, table)
				}
			}
			for _, attempt := range []string{
				`SELECT count(*) FROM public.` + table,
				`DELETE FROM public.` + table,
				`TRUNCATE public.` + table + ` CASCADE`,
			} {
				for _, sub := range []string{"", testenv.UID(1)} {
					if rows, err := asRole(ctx, conn, role, sub, attempt); sqlState(err) != "42501" {
						t.Errorf("%s (signed in as %q): %s: got %v, %v; want permission denied", role, sub, attempt, rows, err)
					}
				}
			}
		}
	}
	// Nothing was changed by the refused attempts.
	if got := strs(t, conn, `SELECT (SELECT count(*) FROM matchmaking_queue)::text || ' ' || (SELECT count(*) FROM matchmaking_batches)::text`); got[0] != "2 1" {
		t.Errorf("queue and batches after the attempts: %s, want 2 1", got[0])
	}

	calls := map[string]string{
		"enqueue_event_matchmaking(uuid,integer)":        `SELECT public.enqueue_event_matchmaking('` + event + `', 3)`,
		"get_matchmaking_queue_stats()":                  `SELECT * FROM public.get_matchmaking_queue_stats()`,
		"get_detailed_queue_info(uuid)":                  `SELECT * FROM public.get_detailed_queue_info('` + event + `')`,
		"matchmaking_enqueue_rows(uuid,uuid[],integer)":  `SELECT public.matchmaking_enqueue_rows('` + event + `', '{}', 1)`,
		"matchmaking_clean_tags(text[],integer,integer)": `SELECT public.matchmaking_clean_tags('{a}', 1, 1)`,
	}
	for _, fn := range engineFunctions(t, conn) {
		for _, role := range apiRoles {
			var has bool
			if err := conn.QueryRow(ctx, `SELECT has_function_privilege($1, 'public.' || $2, 'EXECUTE')`, role, fn).Scan(&has); err != nil {
				t.Fatal(err)
			}
			if has {
				t.Errorf("%s may execute %s", role, fn)
			}
			if call, ok := calls[fn]; ok {
				if rows, err := asRole(ctx, conn, role, testenv.UID(1), call); sqlState(err) != "42501" {
					t.Errorf("%s: %s: got %v, %v; want permission denied", role, call, rows, err)
				}
			}
		}
	}
	for fn := range calls {
		if !slices.Contains(engineFunctions(t, conn), fn) {
			t.Errorf("the test calls %s, which does not exist", fn)
		}
	}
}

// TestSupabaseSignedInJoinEnqueues is the sign-up that failed with "new row
// violates row-level security policy for table matchmaking_queue": a member
// joins and edits their profile under the web app's RLS.
func TestSupabaseSignedInJoinEnqueues(t *testing.T) {
	t.Parallel()
	_, conn := supabaseDatabase(t)
	ctx := t.Context()
	exec(t, conn, testenv.RepoFile(t, "deploy", "postgres", "supabase-app-rls.sql"))
	event := testenv.EventUUID(1)
	exec(t, conn, `INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev', 'Event', true)`, event)
	queue := func() []string {
		return strs(t, conn, `SELECT ltrim(right(user_id::text, 12), '0') || ':' || priority FROM matchmaking_queue ORDER BY user_id`)
	}

	me := testenv.UID(5)
	if _, err := asRole(ctx, conn, "authenticated", me,
		`INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ($1, $2, 'Me')`, event, me); err != nil {
		t.Fatalf("signed-in member joins: %v", err)
	}
	want(t, "queue after joining", queue(), "5:0")

	// The app's RLS is really on: joining as someone else is refused.
	if _, err := asRole(ctx, conn, "authenticated", me,
		`INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ($1, $2, 'Not me')`, event, testenv.UID(6)); sqlState(err) != "42501" {
		t.Errorf("joining as another user: %v, want the web app's RLS to refuse it", err)
	}

	exec(t, conn, `DELETE FROM matchmaking_queue`)
	if _, err := asRole(ctx, conn, "authenticated", me,
		`UPDATE all_events_members SET bio = 'hello' WHERE event_id = $1 AND user_id = $2`, event, me); err != nil {
		t.Fatalf("signed-in member edits their profile: %v", err)
	}
	want(t, "queue after the profile edit", queue(), "5:2")
}

// TestSupabaseMembersReadOwnMatches: a signed-in member reads exactly their
// own list, anon nothing, and nobody through the API writes.
func TestSupabaseMembersReadOwnMatches(t *testing.T) {
	t.Parallel()
	_, conn := supabaseDatabase(t)
	ctx := t.Context()
	event := testenv.EventUUID(1)
	exec(t, conn, `INSERT INTO events (id, code, name) VALUES ($1, 'ev', 'Event')`, event)
	for _, m := range [][2]int{{1, 2}, {1, 3}, {2, 1}, {3, 1}} {
		exec(t, conn, `INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
			VALUES ($1, $2, $3, (SELECT count(*) + 1 FROM matches WHERE user_id = $2), 0.5, 'x', 'fallback')`,
			event, testenv.UID(m[0]), testenv.UID(m[1]))
	}
	read := `SELECT ltrim(right(user_id::text, 12), '0') || '>' || ltrim(right(matched_user_id::text, 12), '0') FROM matches ORDER BY 1`

	rows, err := asRole(ctx, conn, "authenticated", testenv.UID(1), read)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "member 1 reads", rows, "1>2", "1>3")
	rows, err = asRole(ctx, conn, "authenticated", testenv.UID(3), read)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "member 3 reads", rows, "3>1")
	rows, err = asRole(ctx, conn, "authenticated", "", read)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "authenticated without a user reads", rows)
	if rows, err := asRole(ctx, conn, "anon", "", read); err == nil && len(rows) > 0 {
		t.Errorf("anon reads %v", rows)
	}

	for _, role := range apiRoles {
		for _, write := range []string{
			`INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
			 VALUES ('` + event + `', '` + testenv.UID(1) + `', '` + testenv.UID(9) + `', 5, 1, 'x', 'ai')`,
			`UPDATE matches SET score = 1 WHERE user_id = '` + testenv.UID(1) + `'`,
			`DELETE FROM matches WHERE user_id = '` + testenv.UID(1) + `'`,
			`TRUNCATE matches`,
		} {
			if _, err := asRole(ctx, conn, role, testenv.UID(1), write); sqlState(err) != "42501" {
				t.Errorf("%s: %s: %v, want permission denied", role, strings.Fields(write)[0], err)
			}
		}
	}
	if n := strs(t, conn, `SELECT count(*)::text FROM matches`); n[0] != "4" {
		t.Errorf("%s match rows after the attempts, want 4", n[0])
	}
}

// TestLeastPrivilegeWebApp: on plain PostgreSQL, a web-app role with rights
// only on events and all_events_members runs the whole member lifecycle (it
// got "permission denied for table matchmaking_queue" before), turns
// matchmaking off in SQL, and reaches nothing of the engine.
func TestLeastPrivilegeWebApp(t *testing.T) {
	t.Parallel()
	role := "mm_test_app_" + randomHex()
	// Registered before the database exists, so it runs after the database
	// (and with it every grant to the role) is dropped.
	t.Cleanup(func() { dropRole(role) })
	cfg := testenv.EmptyDatabase(t)
	conn := connect(t, cfg)
	ctx := t.Context()
	if _, _, err := migrations.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	checkEngineClosed(t, conn)
	exec(t, conn, `CREATE ROLE `+role+` NOLOGIN`)
	exec(t, conn, `GRANT SELECT, INSERT, UPDATE, DELETE ON events, all_events_members TO `+role)

	app := func(sql string, args ...any) {
		t.Helper()
		if _, err := asRole(ctx, conn, role, "", sql, args...); err != nil {
			t.Fatalf("as the web app: %s: %v", sql, err)
		}
	}
	queue := func() []string {
		return strs(t, conn, `SELECT ltrim(right(user_id::text, 12), '0') || ':' || priority FROM matchmaking_queue ORDER BY user_id`)
	}
	event := testenv.EventUUID(1)
	app(`INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev', 'Event', true)`, event)
	app(`INSERT INTO all_events_members (event_id, user_id, display_name) SELECT $1, u, 'M' FROM unnest($2::uuid[]) u`,
		event, testenv.UIDs(1, 2, 3))
	want(t, "queue after joins", queue(), "1:0", "2:0", "3:0")

	exec(t, conn, `DELETE FROM matchmaking_queue`)
	app(`UPDATE all_events_members SET bio = 'new' WHERE user_id = $1`, testenv.UID(2))
	want(t, "queue after a profile edit", queue(), "2:2")

	// A departure: whoever listed the member goes round again.
	exec(t, conn, `DELETE FROM matchmaking_queue`)
	exec(t, conn, `INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
		VALUES ($1, $2, $3, 1, 0.5, 'x', 'fallback'), ($1, $4, $2, 1, 0.5, 'x', 'fallback')`,
		event, testenv.UID(1), testenv.UID(3), testenv.UID(2))
	exec(t, conn, `INSERT INTO matchmaking_event_state (event_id) VALUES ($1)`, event)
	app(`DELETE FROM all_events_members WHERE user_id = $1`, testenv.UID(3))
	want(t, "queue after a departure", queue(), "1:1")

	// Off in SQL: the queue goes at commit, the matches stay.
	app(`UPDATE events SET matchmaking_enabled = false WHERE id = $1`, event)
	want(t, "queue after turning matchmaking off", queue())
	if n := strs(t, conn, `SELECT count(*)::text FROM matches`); n[0] != "1" {
		t.Errorf("%s match rows after turning matchmaking off, want the 1 that names no departed member", n[0])
	}

	for _, table := range engineTables(t, conn) {
		if _, err := asRole(ctx, conn, role, "", `SELECT count(*) FROM public.`+table); sqlState(err) != "42501" {
			t.Errorf("the web-app role reads %s: %v", table, err)
		}
	}
	if _, err := asRole(ctx, conn, role, "", `SELECT enqueue_event_matchmaking($1, 3)`, event); sqlState(err) != "42501" {
		t.Errorf("the web-app role runs enqueue_event_matchmaking: %v", err)
	}

	// Deleting the event cascades into the engine's tables, RLS or not.
	exec(t, conn, `INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ('t', $1, '{}')`, event)
	app(`DELETE FROM events WHERE id = $1`, event)
	if n := strs(t, conn, `SELECT ((SELECT count(*) FROM matchmaking_batches) + (SELECT count(*) FROM matches)
		+ (SELECT count(*) FROM matchmaking_event_state))::text`); n[0] != "0" {
		t.Errorf("%s engine rows left after the event was deleted", n[0])
	}
}

// TestDisableInSQL: matchmaking turned off by an UPDATE drops the queue when
// the transaction commits; turned off and on again in one transaction, the
// queue the enable made stays; other events are untouched.
func TestDisableInSQL(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	on := d.Event(1, true)
	other := d.Event(2, true)
	d.members(on, 1, 2)
	d.members(other, 1)
	d.Match(on, 1, 2, 1)

	d.Exec(`UPDATE events SET matchmaking_enabled = false WHERE id = $1`, on)
	want(t, "queue after turning off", d.queue(on))
	want(t, "other event's queue", d.queue(other), "1:0")
	want(t, "matches kept", d.Matches(on), "1>2#1")

	d.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id = $1`, on)
	want(t, "queue after turning on again", d.queue(on), "1:3", "2:3")
	tx, err := d.Pool.Begin(d.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, enabled := range []bool{false, true} {
		if _, err := tx.Exec(d.Ctx, `UPDATE events SET matchmaking_enabled = $2 WHERE id = $1`, on, enabled); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(d.Ctx); err != nil {
		t.Fatal(err)
	}
	want(t, "queue after off and on in one transaction", d.queue(on), "1:3", "2:3")
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func dropRole(role string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.AdminURL())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
}
