package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// asRole runs sql in a transaction as role, signed in as user sub ("" for
// nobody: request.jwt.claim.sub as PostgREST sets it), and returns its rows,
// each row's columns joined by " ". It commits when the statement succeeds.
func asRole(ctx context.Context, pool *pgxpool.Pool, role, sub, sql string, args ...any) ([]string, error) {
	var out []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claim.sub', $1, true)`, sub); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			fields := make([]string, len(vals))
			for i, v := range vals {
				fields[i] = fmt.Sprint(v)
			}
			out = append(out, strings.Join(fields, " "))
		}
		return rows.Err()
	})
	return out, err
}

func permissionDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// TestSupabase is the Supabase project, tried as a new user would:
// Supabase's roles and default grants exist before `starter migrate`, the
// web app has its RLS, the worker runs as a role from grant-worker. Through
// the Data API's roles, anon and authenticated see and change nothing of
// the engine, table by table and function by function; a member who signs
// up and joins is matched; a member reads exactly their own list; and the
// web app turning matchmaking off in SQL stops the claiming and keeps the
// matches.
func TestSupabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role := newRoleName(t)
	url := testenv.URL(testenv.EmptyDatabase(t))
	pool := openPool(t, url)
	setup := testenv.RepoFile(t, "deploy", "postgres", "supabase-like.sql")
	if _, err := pool.Exec(ctx, setup); err != nil {
		t.Fatalf("Supabase-like setup: %v", err)
	}
	if out, errOut, code := runStarter(append(os.Environ(), "DATABASE_URL="+url), "migrate"); code != 0 {
		t.Fatalf("starter migrate exited %d: %s%s", code, out, errOut)
	}
	if _, err := pool.Exec(ctx, testenv.RepoFile(t, "deploy", "postgres", "supabase-app-rls.sql")); err != nil {
		t.Fatalf("the web app's RLS: %v", err)
	}
	e := setUpEnv(t, url, role, map[string]string{"BATCH_SIZE": "10000"})

	// Table by table, function by function. match_exclusions is the web
	// app's too: a signed-in member reads, adds and deletes their own rows
	// (migrations/eligibility_rls_test.go checks its policies).
	tables := stringsOf(t, pool, `SELECT relname::text FROM pg_class
		WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
		  AND relname NOT IN ('events', 'all_events_members', 'matches', 'match_exclusions') ORDER BY 1`)
	functions := stringsOf(t, pool, `SELECT oid::regprocedure::text FROM pg_proc
		WHERE pronamespace = 'public'::regnamespace ORDER BY 1`)
	if len(tables) < 8 || len(functions) < 10 {
		t.Fatalf("engine tables %v, functions %v: fewer than the schema has", tables, functions)
	}
	member := demodata.Generate(7, 1)[0].UserID
	for _, apiRole := range []string{"anon", "authenticated"} {
		for _, table := range tables {
			column := stringsOf(t, pool, `SELECT attname::text FROM pg_attribute WHERE attrelid = ('public.' || $1)::regclass AND attnum = 1`, table)[0]
			for _, attempt := range []string{
				`SELECT * FROM public.` + table + ` LIMIT 1`,
				`INSERT INTO public.` + table + ` DEFAULT VALUES`,
				`UPDATE public.` + table + ` SET ` + column + ` = ` + column,
				`DELETE FROM public.` + table,
				`TRUNCATE public.` + table + ` CASCADE`,
			} {
				if rows, err := asRole(ctx, pool, apiRole, member, attempt); !permissionDenied(err) {
					t.Errorf("%s: %s: %v, %v; want permission denied", apiRole, attempt, rows, err)
				}
			}
		}
		for _, fn := range functions {
			var may bool
			if err := pool.QueryRow(ctx, `SELECT has_function_privilege($1, 'public.' || $2, 'EXECUTE')`, apiRole, fn).Scan(&may); err != nil {
				t.Fatal(err)
			}
			if may {
				t.Errorf("%s may execute %s", apiRole, fn)
			}
		}
		for _, call := range []string{
			`SELECT public.enqueue_event_matchmaking(gen_random_uuid(), 3)`,
			`SELECT * FROM public.get_matchmaking_queue_stats()`,
			`SELECT * FROM public.get_detailed_queue_info(gen_random_uuid())`,
		} {
			if rows, err := asRole(ctx, pool, apiRole, member, call); !permissionDenied(err) {
				t.Errorf("%s: %s: %v, %v; want permission denied", apiRole, call, rows, err)
			}
		}
	}

	// An event of 60 members, enabled by the web app's server side
	// (service_role), matched by the least-privilege worker.
	gen := demodata.Generate(21, 61)
	eventID := loadEvent(t, pool, "supa", gen[:60])
	e.startWorker()
	if _, err := asRole(ctx, pool, "service_role", "", `UPDATE events SET matchmaking_enabled = true WHERE id = $1`, eventID); err != nil {
		t.Fatalf("enable as service_role: %v", err)
	}
	waitFor(t, 60*time.Second, "the event to be matched", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0 &&
			queryInt(t, pool, `SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1`, eventID) == 60
	})
	if who := stringsOf(t, pool, `SELECT DISTINCT usename::text FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'matchmaker-worker%'`); !slices.Equal(who, []string{role}) {
		t.Errorf("the worker's sessions run as %v, want only %s", who, role)
	}

	// A member signs up and joins the event themselves, under the web
	// app's RLS: the triggers enqueue them and the worker matches them.
	newcomer := gen[60]
	joined := time.Now()
	if _, err := asRole(ctx, pool, "authenticated", newcomer.UserID, `
		INSERT INTO all_events_members (event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, $9, $10)`,
		eventID, newcomer.UserID, newcomer.DisplayName, newcomer.Company, newcomer.JobTitle, newcomer.Industry,
		newcomer.Interests, newcomer.LookingFor, newcomer.Offering, newcomer.Bio); err != nil {
		t.Fatalf("a signed-in member joins: %v", err)
	}
	waitFor(t, 20*time.Second, "the newcomer to be matched", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, eventID, newcomer.UserID) == topN
	})
	t.Logf("a signed-in join was matched %s after the INSERT", time.Since(joined).Round(time.Millisecond))
	checkInvariants(t, pool, eventID, topN)

	// Each member reads exactly their own list; anon reads nothing.
	read := `SELECT user_id::text FROM matches`
	for _, m := range []string{newcomer.UserID, gen[0].UserID, gen[30].UserID} {
		rows, err := asRole(ctx, pool, "authenticated", m, read)
		if err != nil {
			t.Fatalf("member %s reads matches: %v", m, err)
		}
		if len(rows) != topN || slices.ContainsFunc(rows, func(r string) bool { return r != m }) {
			t.Errorf("member %s reads %v, want their own %d rows", m, rows, topN)
		}
	}
	if rows, err := asRole(ctx, pool, "anon", "", read); err == nil && len(rows) > 0 {
		t.Errorf("anon reads %d match rows", len(rows))
	}
	if rows, err := asRole(ctx, pool, "authenticated", newcomer.UserID,
		`UPDATE all_events_members SET bio = 'edited' WHERE user_id = $1 RETURNING user_id::text`, newcomer.UserID); err != nil || len(rows) != 1 {
		t.Errorf("the member edits their profile: %v, %v", rows, err)
	}

	// Off in SQL, as the web app would: the queue goes at once and nothing
	// more is claimed, while the matches stay. A burst of edits just before
	// makes sure there is work to stop.
	waitFor(t, 20*time.Second, "the profile edit to be matched", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	if _, err := pool.Exec(ctx, `UPDATE all_events_members SET bio = bio || ' again' WHERE event_id = $1`, eventID); err != nil {
		t.Fatal(err)
	}
	if _, err := asRole(ctx, pool, "service_role", "", `UPDATE events SET matchmaking_enabled = false WHERE id = $1`, eventID); err != nil {
		t.Fatalf("disable as service_role: %v", err)
	}
	// A claim that took rows before the UPDATE committed has its batch row
	// already (the UPDATE's delete waited for it); no claim after it finds
	// anything, so no batch row may follow.
	batches := queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1`, eventID)
	if n := queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID); n != 0 {
		t.Errorf("%d members still queued after matchmaking was turned off", n)
	}
	time.Sleep(3 * time.Second) // the wake-up of the edits, and past SAFETY_POLL (2s)
	if later := queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1`, eventID); later != batches {
		t.Errorf("%d batches claimed after matchmaking was turned off", later-batches)
	}
	if n := queryInt(t, pool, `SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1`, eventID); n != 61 {
		t.Errorf("%d members have matches after turning matchmaking off, want all 61 kept", n)
	}
}

func stringsOf(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}
