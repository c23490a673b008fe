package migrations_test

import (
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/internal/testenv"
)

// TestSupabaseMembersManageOwnExclusions: under Supabase's roles a
// signed-in member adds, reads, re-labels and removes only the exclusions
// where they are user_id, and each change re-matches both members through
// the triggers; anon reaches nothing; match_rules is the organiser's
// (service_role), not the members'.
func TestSupabaseMembersManageOwnExclusions(t *testing.T) {
	t.Parallel()
	_, conn := supabaseDatabase(t)
	ctx := t.Context()
	exec(t, conn, testenv.RepoFile(t, "deploy", "postgres", "supabase-app-rls.sql"))
	event := testenv.EventUUID(1)
	exec(t, conn, `INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev', 'Event', true)`, event)
	exec(t, conn, `INSERT INTO all_events_members (event_id, user_id, display_name) SELECT $1, u, 'M' FROM unnest($2::uuid[]) u`,
		event, testenv.UIDs(1, 2, 3))
	exec(t, conn, `INSERT INTO matchmaking_event_state (event_id) VALUES ($1)`, event)
	exec(t, conn, `DELETE FROM matchmaking_queue`)
	queue := func() []string {
		return strs(t, conn, `SELECT ltrim(right(user_id::text, 12), '0') || ':' || priority FROM matchmaking_queue ORDER BY user_id`)
	}
	rows := func() []string {
		return strs(t, conn, `SELECT ltrim(right(user_id::text, 12), '0') || '>' || ltrim(right(excluded_user_id::text, 12), '0') || ':' || reason
			FROM match_exclusions ORDER BY 1`)
	}
	me, them, third := testenv.UID(1), testenv.UID(2), testenv.UID(3)
	const read = `SELECT ltrim(right(user_id::text, 12), '0') || '>' || ltrim(right(excluded_user_id::text, 12), '0') FROM match_exclusions ORDER BY 1`

	if _, err := asRole(ctx, conn, "authenticated", me,
		`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'declined')`, event, me, them); err != nil {
		t.Fatalf("a member declines someone: %v", err)
	}
	want(t, "queue after the decline", queue(), "1:2", "2:2")
	if _, err := asRole(ctx, conn, "authenticated", me,
		`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'blocked')`, event, them, third); sqlState(err) != "42501" {
		t.Errorf("a member excludes in someone else's name: %v, want the policy to refuse it", err)
	}
	if _, err := asRole(ctx, conn, "authenticated", me,
		`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'ghosted')`, event, me, third); sqlState(err) != "23514" {
		t.Errorf("an unknown reason: %v, want the check to refuse it", err)
	}

	// Others' rows, including the ones naming the member, stay unseen and
	// untouched.
	exec(t, conn, `INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'blocked')`, event, them, me)
	got, err := asRole(ctx, conn, "authenticated", me, read)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "member 1 reads", got, "1>2")
	got, err = asRole(ctx, conn, "authenticated", "", read)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "signed in as nobody reads", got)
	for _, write := range []string{
		`DELETE FROM match_exclusions WHERE user_id = '` + them + `'`,
		`UPDATE match_exclusions SET reason = 'declined' WHERE user_id = '` + them + `'`,
	} {
		if _, err := asRole(ctx, conn, "authenticated", me, write); err != nil {
			t.Errorf("%s: %v", write, err)
		}
	}
	want(t, "rows after touching someone else's", rows(), "1>2:declined", "2>1:blocked")

	// Their own row: a new reason, but not a new person (delete and insert).
	exec(t, conn, `DELETE FROM matchmaking_queue`)
	if _, err := asRole(ctx, conn, "authenticated", me, `UPDATE match_exclusions SET reason = 'already_met' WHERE user_id = $1`, me); err != nil {
		t.Errorf("a member changes their reason: %v", err)
	}
	want(t, "queue after a new reason", queue())
	if _, err := asRole(ctx, conn, "authenticated", me, `UPDATE match_exclusions SET excluded_user_id = $2 WHERE user_id = $1`, me, third); sqlState(err) != "42501" {
		t.Errorf("a member re-points their exclusion: %v, want permission denied", err)
	}
	if _, err := asRole(ctx, conn, "authenticated", me, `DELETE FROM match_exclusions WHERE user_id = $1`, me); err != nil {
		t.Errorf("a member takes their decline back: %v", err)
	}
	want(t, "rows after taking it back", rows(), "2>1:blocked")
	want(t, "queue after taking it back", queue(), "1:2", "2:2")

	for _, attempt := range []string{
		`SELECT count(*) FROM match_exclusions`,
		`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ('` + event + `', '` + me + `', '` + third + `', 'declined')`,
		`DELETE FROM match_exclusions`,
		`SELECT count(*) FROM match_rules`,
		`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ('` + event + `', 'a', 'b')`,
		`DELETE FROM match_rules`,
	} {
		for _, who := range [][2]string{{"anon", ""}, {"authenticated", me}} {
			if who[0] == "authenticated" && strings.Contains(attempt, "match_exclusions") {
				continue // theirs, as above
			}
			if _, err := asRole(ctx, conn, who[0], who[1], attempt); sqlState(err) != "42501" {
				t.Errorf("%s: %s: %v, want permission denied", who[0], attempt, err)
			}
		}
	}
	for _, table := range []string{"match_exclusions", "match_rules"} {
		for _, priv := range tablePrivileges {
			var has bool
			if err := conn.QueryRow(ctx, `SELECT has_table_privilege('anon', 'public.' || $1, $2)`, table, priv).Scan(&has); err != nil {
				t.Fatal(err)
			}
			if has {
				t.Errorf("anon has %s on %s", priv, table)
			}
		}
	}

	// The organiser's rules, written with the service role, re-match the
	// whole event.
	exec(t, conn, `DELETE FROM matchmaking_queue`)
	if _, err := asRole(ctx, conn, "service_role", "",
		`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'exhibitor', 'buyer')`, event); err != nil {
		t.Fatalf("the service role writes a rule: %v", err)
	}
	want(t, "queue after a rule", queue(), "1:2", "2:2", "3:2")
}
