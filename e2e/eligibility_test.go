package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// eligibilityViolations return the listed pairs that break the rules of
// migration 009, read from the database alone.
var eligibilityViolations = []struct {
	rule  string
	query string
}{
	{"no excluded pair is listed, in either direction", `
		SELECT m.user_id::text || ' lists ' || m.matched_user_id::text
		FROM matches m JOIN match_exclusions x ON x.event_id = m.event_id
		  AND ((x.user_id = m.user_id AND x.excluded_user_id = m.matched_user_id)
		       OR (x.user_id = m.matched_user_id AND x.excluded_user_id = m.user_id))
		WHERE m.event_id = $1`},
	{"two members who list languages share one", `
		SELECT m.user_id::text || ' lists ' || m.matched_user_id::text
		FROM matches m
		JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
		JOIN all_events_members b ON b.event_id = m.event_id AND b.user_id = m.matched_user_id
		WHERE m.event_id = $1 AND cardinality(a.languages) > 0 AND cardinality(b.languages) > 0
		  AND NOT EXISTS (SELECT 1 FROM unnest(a.languages) x, unnest(b.languages) y
		                  WHERE lower(btrim(x)) = lower(btrim(y)))`},
	{"under rules, every listed type is allowed for the viewer's type", `
		SELECT m.user_id::text || ' (' || coalesce(a.attendee_type, '-') || ') lists ' || m.matched_user_id::text
		       || ' (' || coalesce(b.attendee_type, '-') || ')'
		FROM matches m
		JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
		JOIN all_events_members b ON b.event_id = m.event_id AND b.user_id = m.matched_user_id
		WHERE m.event_id = $1 AND EXISTS (SELECT 1 FROM match_rules WHERE event_id = $1)
		  AND NOT EXISTS (SELECT 1 FROM match_rules r WHERE r.event_id = $1
		                  AND lower(btrim(r.viewer_type)) = lower(btrim(a.attendee_type))
		                  AND lower(btrim(r.candidate_type)) = lower(btrim(b.attendee_type)))`},
}

func checkEligibility(t *testing.T, pool *pgxpool.Pool, eventID string) {
	t.Helper()
	for _, v := range eligibilityViolations {
		rows, err := pool.Query(context.Background(), v.query, eventID)
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		if len(bad) > 0 {
			t.Errorf("rule broken: %s: %v", v.rule, bad[:min(5, len(bad))])
		}
	}
}

// eligibilityPool reads the event for a from-scratch recompute with its
// own SQL: profiles with types and languages, exclusions on both sides,
// and the rules.
func eligibilityPool(t *testing.T, pool *pgxpool.Pool, eventID string) *matching.Pool {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT user_id::text, display_name, coalesce(company, ''), coalesce(job_title, ''), coalesce(industry, ''),
		       interests, looking_for, offering, bio, coalesce(attendee_type, ''), coalesce(languages, '{}'),
		       ARRAY(SELECT x.excluded_user_id::text FROM match_exclusions x WHERE x.event_id = m.event_id AND x.user_id = m.user_id
		             UNION SELECT x.user_id::text FROM match_exclusions x WHERE x.event_id = m.event_id AND x.excluded_user_id = m.user_id)
		FROM all_events_members m WHERE event_id = $1 ORDER BY user_id`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attendee.Profile, error) {
		var p attendee.Profile
		return p, r.Scan(&p.UserID, &p.DisplayName, &p.Company, &p.JobTitle, &p.Industry,
			&p.Interests, &p.LookingFor, &p.Offering, &p.Bio, &p.AttendeeType, &p.Languages, &p.Excluded)
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err = pool.Query(ctx, `SELECT viewer_type, candidate_type FROM match_rules WHERE event_id = $1`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attendee.Rule])
	if err != nil {
		t.Fatal(err)
	}
	p, err := matching.NewPoolWithRules(ctx, profiles, rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkEligibleTopN compares every stored list with a from-scratch top-N
// that honours exclusions, rules and languages.
func checkEligibleTopN(t *testing.T, pool *pgxpool.Pool, eventID string) {
	t.Helper()
	p := eligibilityPool(t, pool, eventID)
	lists := storedLists(t, pool, eventID)
	wrong := 0
	for i := range p.Len() {
		id := p.Profile(i).UserID
		want := p.TopN(i, topN)
		var got, wantIDs []string
		for _, m := range lists[id] {
			got = append(got, fmt.Sprintf("%s %.4f", m.MatchedUserID, m.Score))
		}
		for _, w := range want {
			wantIDs = append(wantIDs, fmt.Sprintf("%s %.4f", p.Profile(w.Other).UserID, w.Score))
		}
		if !slices.Equal(got, wantIDs) {
			if wrong++; wrong <= 3 {
				t.Errorf("member %s: stored %v, from scratch %v", id, got, wantIDs)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d lists differ from a full recompute", wrong)
	}
}

// drained waits until the event's queue is empty and returns how long that
// took from since.
func drained(t *testing.T, pool *pgxpool.Pool, eventID string, since time.Time, what string) time.Duration {
	t.Helper()
	waitFor(t, 60*time.Second, what, func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	took := time.Since(since)
	t.Logf("%s: %s", what, took.Round(time.Millisecond))
	return took
}

func listedIDs(t *testing.T, pool *pgxpool.Pool, eventID, viewer string) []string {
	t.Helper()
	var ids []string
	for _, m := range storedLists(t, pool, eventID)[viewer] {
		ids = append(ids, m.MatchedUserID)
	}
	return ids
}

// TestEligibilityDeclinesRulesLanguages runs the real worker on two events:
// one whose members decline each other and list languages, one with
// organiser rules on attendee types. Every change goes in as the web app
// makes it (SQL on the tables), and the lists must follow within seconds,
// never holding an excluded, disallowed or language-less pair, and equal a
// from-scratch recompute at rest.
func TestEligibilityDeclinesRulesLanguages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	members := demodata.Generate(41, 60)
	declines := loadEvent(t, pool, "declines", members)
	// A third list English, a sixth German only, the rest none.
	exec(`UPDATE all_events_members m SET languages = CASE WHEN r % 3 = 0 THEN ARRAY['English', 'French']
	                                                      WHEN r % 6 = 1 THEN ARRAY[' german'] END
		FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) AS r FROM all_events_members WHERE event_id = $1) n
		WHERE m.event_id = $1 AND m.user_id = n.user_id`, declines)

	typed := loadEvent(t, pool, "rules", demodata.Generate(42, 60))
	exec(`UPDATE all_events_members m SET attendee_type = (ARRAY['Exhibitor', 'buyer', 'investor', 'startup', NULL])[1 + r % 5]
		FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) AS r FROM all_events_members WHERE event_id = $1) n
		WHERE m.event_id = $1 AND m.user_id = n.user_id`, typed)
	exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES
		($1, 'exhibitor', 'buyer'), ($1, 'buyer', 'exhibitor'), ($1, 'investor', 'startup')`, typed)

	e.startWorker()
	for _, code := range []string{"declines", "rules"} {
		if out, errOut, status := e.starter("enable", code, "--wait", "--timeout", "3m"); status != 0 {
			t.Fatalf("starter enable %s exited %d: %s %s", code, status, out, errOut)
		}
	}
	checkEligibility(t, pool, declines)
	checkEligibleTopN(t, pool, declines)
	checkEligibility(t, pool, typed)
	checkEligibleTopN(t, pool, typed)
	if n := queryInt(t, pool, `SELECT count(*) FROM matches m JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
		WHERE m.event_id = $1 AND a.attendee_type = 'startup'`, typed); n != 0 {
		t.Errorf("startups have %d matches, but no rule lets them see anyone", n)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM matches m JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
		WHERE m.event_id = $1 AND a.attendee_type = 'investor'`, typed); n == 0 {
		t.Error("investors have no matches, though they may see startups")
	}

	t.Run("decline", func(t *testing.T) {
		var viewer, declined string
		for _, m := range members {
			if list := listedIDs(t, pool, declines, m.UserID); len(list) == topN {
				viewer, declined = m.UserID, list[0]
				break
			}
		}
		before := listedIDs(t, pool, declines, viewer)
		at := time.Now()
		exec(`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'declined')`,
			declines, viewer, declined)
		// Gone at once, in both directions, with the INSERT's commit.
		checkEligibility(t, pool, declines)
		waitFor(t, 60*time.Second, "both members re-matched", func() bool {
			return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, declines) == 0 &&
				len(listedIDs(t, pool, declines, viewer)) == topN
		})
		t.Logf("declined member replaced in %s", time.Since(at).Round(time.Millisecond))
		checkEligibility(t, pool, declines)
		checkEligibleTopN(t, pool, declines)
		if slices.Contains(listedIDs(t, pool, declines, declined), viewer) || slices.Contains(listedIDs(t, pool, declines, viewer), declined) {
			t.Fatal("the declined pair is still listed")
		}

		at = time.Now()
		exec(`DELETE FROM match_exclusions WHERE event_id = $1`, declines)
		drained(t, pool, declines, at, "eligible again after the decline was taken back")
		checkEligibleTopN(t, pool, declines)
		if after := listedIDs(t, pool, declines, viewer); !slices.Equal(after, before) {
			t.Errorf("after taking the decline back the list is %v, want the first one %v", after, before)
		}
	})

	t.Run("languages", func(t *testing.T) {
		// A member who spoke English and French now speaks only Japanese:
		// a profile edit; nobody who lists other languages keeps them.
		var speaker string
		if err := pool.QueryRow(ctx, `SELECT user_id::text FROM all_events_members
			WHERE event_id = $1 AND 'English' = ANY (languages) ORDER BY user_id LIMIT 1`, declines).Scan(&speaker); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		exec(`UPDATE all_events_members SET languages = '{Japanese}' WHERE event_id = $1 AND user_id = $2`, declines, speaker)
		drained(t, pool, declines, at, "re-matched after a language edit")
		checkEligibility(t, pool, declines)
		checkEligibleTopN(t, pool, declines)
	})

	t.Run("rules", func(t *testing.T) {
		// Startups may now see investors and each other: the whole event
		// goes round again.
		at := time.Now()
		exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'Startup', 'investor'), ($1, 'startup', 'startup')`, typed)
		drained(t, pool, typed, at, "re-matched after new rules")
		checkEligibility(t, pool, typed)
		checkEligibleTopN(t, pool, typed)
		if n := queryInt(t, pool, `SELECT count(*) FROM matches m JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
			WHERE m.event_id = $1 AND a.attendee_type = 'startup'`, typed); n == 0 {
			t.Error("startups have no matches after a rule let them see investors")
		}

		// An exhibitor becomes a buyer: a profile edit under rules.
		var exhibitor string
		if err := pool.QueryRow(ctx, `SELECT user_id::text FROM all_events_members
			WHERE event_id = $1 AND attendee_type = 'Exhibitor' ORDER BY user_id LIMIT 1`, typed).Scan(&exhibitor); err != nil {
			t.Fatal(err)
		}
		at = time.Now()
		exec(`UPDATE all_events_members SET attendee_type = 'buyer' WHERE event_id = $1 AND user_id = $2`, typed, exhibitor)
		drained(t, pool, typed, at, "re-matched after a type edit")
		checkEligibility(t, pool, typed)
		checkEligibleTopN(t, pool, typed)

		// Rules gone: everyone may meet everyone again.
		at = time.Now()
		exec(`DELETE FROM match_rules WHERE event_id = $1`, typed)
		drained(t, pool, typed, at, "re-matched without rules")
		checkEligibleTopN(t, pool, typed)
		if n := queryInt(t, pool, `SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1`, typed); n != 60 {
			t.Errorf("%d of 60 members have matches without rules", n)
		}
	})
	if t.Failed() {
		out, _, _ := e.starter("status", "declines")
		t.Logf("status:\n%s", strings.TrimSpace(out))
	}
}
