package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

const topN = 3

// loadEvent creates an event with n generated members and returns its ID.
func loadEvent(t *testing.T, pool *pgxpool.Pool, code string, members []attendee.Profile) string {
	t.Helper()
	st := store.New(pool)
	ev, err := st.EnsureEvent(context.Background(), code, "Test event "+code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.InsertMembers(context.Background(), ev.ID, members); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestEventIsFullyMatchedThenANewcomerJoins is the main path: enable an
// event of 240 members through the starter, check every rule by SQL, then add
// a newcomer and check that only the lists the newcomer beats change.
func TestEventIsFullyMatchedThenANewcomerJoins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(11, 241)
	eventID := loadEvent(t, pool, "summit", members[:240])
	e.startWorker()

	out, errOut, code := e.starter("enable", "summit", "--wait", "--timeout", "3m")
	if code != 0 {
		t.Fatalf("starter enable --wait exited %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "240 of 240 members have matches") {
		t.Fatalf("starter output does not report the event fully matched:\n%s", out)
	}
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)
	if n := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'fallback'`, eventID); n != 240*topN {
		t.Errorf("fallback insights: got %d rows, want %d", n, 240*topN)
	}

	// The newcomer arrives through the web app's INSERT; the listener must
	// notice it without any starter call.
	before := storedLists(t, pool, eventID)
	newcomer := members[240]
	inserted := time.Now()
	if _, err := store.New(pool).InsertMembers(context.Background(), eventID, []attendee.Profile{newcomer}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the newcomer's matches", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, eventID, newcomer.UserID) == topN &&
			queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	t.Logf("newcomer matched %s after the INSERT", time.Since(inserted).Round(time.Millisecond))

	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)

	// Existing lists change exactly where the newcomer beats the N-th match.
	p := eventPool(t, pool, eventID)
	after := storedLists(t, pool, eventID)
	nc, _ := p.Index(newcomer.UserID)
	changed := 0
	for i := 0; i < p.Len(); i++ {
		id := p.Profile(i).UserID
		if i == nc {
			continue
		}
		want := expectedAfterNewcomer(p, i, before[id], nc)
		got := after[id]
		if fmt.Sprint(listIDs(got)) != fmt.Sprint(want) {
			t.Errorf("member %s: list %v, want %v", id, listIDs(got), want)
		}
		if fmt.Sprint(listIDs(before[id])) != fmt.Sprint(listIDs(got)) {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("the newcomer improved nobody's list; the test event should make that happen")
	}
	t.Logf("the newcomer entered %d existing lists", changed)
}

// expectedAfterNewcomer applies the seed's rule by hand: the old list plus
// the newcomer if eligible, best topN kept.
func expectedAfterNewcomer(p *matching.Pool, viewer int, old []store.StoredMatch, newcomer int) []string {
	entries := make([]matching.Entry, 0, len(old)+1)
	for _, m := range old {
		j, _ := p.Index(m.MatchedUserID)
		entries = append(entries, matching.Entry{Other: j, Score: m.Score})
	}
	if p.Eligible(viewer, newcomer) {
		entries = append(entries, matching.Entry{Other: newcomer, Score: p.Score(viewer, newcomer)})
	}
	for i := 1; i < len(entries); i++ {
		for k := i; k > 0 && p.Better(viewer, entries[k], entries[k-1]); k-- {
			entries[k], entries[k-1] = entries[k-1], entries[k]
		}
	}
	if len(entries) > topN {
		entries = entries[:topN]
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = p.Profile(e.Other).UserID
	}
	return ids
}

func listIDs(list []store.StoredMatch) []string {
	ids := make([]string, len(list))
	for i, m := range list {
		ids[i] = m.MatchedUserID
	}
	return ids
}

// TestWorkerKilledMidRunLosesNothing kills the worker with SIGKILL while an
// event is being matched in small batches, starts a new one, and checks the
// result is complete, duplicate-free and equal to a full recompute.
func TestWorkerKilledMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"BATCH_SIZE": "20"})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "crash", demodata.Generate(23, 400))
	first := e.startWorker()

	if out, errOut, code := e.starter("enable", "crash"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	waitFor(t, 60*time.Second, "a few committed batches", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND committed_at IS NOT NULL`, eventID) >= 3
	})
	first.stop(syscall.SIGKILL) // SIGKILL: no graceful shutdown, activities die mid-flight
	left := queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID)
	if left == 0 {
		t.Fatalf("the worker finished before it was killed; make the event larger")
	}
	t.Logf("killed the worker with %d of 400 members still queued", left)

	e.startWorker()
	waitFor(t, 3*time.Minute, "the queue to drain after the restart", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)
	if n := queryInt(t, pool, `
		SELECT count(*) FROM (SELECT user_id, matched_user_id FROM matches WHERE event_id = $1
		                      GROUP BY 1, 2 HAVING count(*) > 1) d`, eventID); n != 0 {
		t.Errorf("%d duplicated pairs", n)
	}
	if n := queryInt(t, pool, `SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1`, eventID); n != 400 {
		t.Errorf("%d of 400 members have matches", n)
	}
}

// TestPauseAndResume pauses an event's workflow by signal, as an operator
// does with `temporal workflow signal --name pause`.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(31, 61)
	eventID := loadEvent(t, pool, "pausable", members[:60])
	e.startWorker()
	if out, errOut, code := e.starter("enable", "pausable", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}

	ctx := context.Background()
	wfID := workflows.WorkflowID(eventID)
	if err := suite.temporal.SignalWorkflow(ctx, wfID, "", workflows.SignalPause, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the workflow to report paused", func() bool {
		return queryStatus(t, wfID).Paused
	})
	if _, err := store.New(pool).InsertMembers(ctx, eventID, members[60:]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // longer than the listener's debounce and the safety poll
	if n := queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1 AND claim_token IS NULL`, eventID); n != 1 {
		t.Fatalf("a paused event claimed its queue: %d unclaimed rows, want 1", n)
	}

	if err := suite.temporal.SignalWorkflow(ctx, wfID, "", workflows.SignalResume, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the newcomer to be matched after resume", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	checkInvariants(t, pool, eventID, topN)
	if st := queryStatus(t, wfID); st.Paused || st.UsersMatched != 61 {
		t.Errorf("status after resume: paused=%v users matched=%d, want false and 61", st.Paused, st.UsersMatched)
	}
}

func queryStatus(t *testing.T, workflowID string) workflows.Status {
	t.Helper()
	v, err := suite.temporal.QueryWorkflow(context.Background(), workflowID, "", workflows.QueryStatus)
	if err != nil {
		t.Fatalf("query status: %v", err)
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStarterErrorsAreOneLine checks that every bad input ends in one line
// naming the problem and a non-zero exit, never a stack trace.
func TestStarterErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	loadEvent(t, pool, "known", demodata.Generate(5, 3))

	with := func(k, v string) []string { return append(e.environ(), k+"="+v) }
	cases := []struct {
		name    string
		environ []string
		args    []string
		code    int // exitFailure, or exitUsage: then the usage follows the line
		want    string
	}{
		{"unknown event code", e.environ(), []string{"enable", "no-such-event"}, exitFailure, `no event with code or id "no-such-event"`},
		{"unknown event uuid", e.environ(), []string{"enable", "6f1c2e7a-1111-4222-8333-944455556666"}, exitFailure, "no event with code or id"},
		{"malformed uuid", e.environ(), []string{"enable", "6f1c2e7a-1111-4222-8333-94445555666"}, exitUsage, "is not a valid event UUID"},
		{"no event given", e.environ(), []string{"enable"}, exitUsage, "enable takes one event code or uuid"},
		{"unknown flag", e.environ(), []string{"enable", "known", "--wiat"}, exitUsage, "unknown flag: --wiat"},
		{"database unreachable", with("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"), []string{"enable", "known"}, exitFailure, "database unreachable at 127.0.0.1:1/x"},
		{"temporal unreachable", with("TEMPORAL_ADDRESS", "127.0.0.1:1"), []string{"enable", "known"}, exitFailure, "Temporal unreachable at 127.0.0.1:1"},
		{"bad setting", with("BATCH_SIZE", "many"), []string{"enable", "known"}, exitFailure, "BATCH_SIZE"},
		{"bad duration", e.environ(), []string{"enable", "known", "--wait", "--timeout", "soon"}, exitUsage, `invalid argument "soon" for "--timeout" flag`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runStarter(c.environ, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, c.code, out, errOut)
			}
			first, rest, _ := strings.Cut(strings.TrimRight(errOut, "\n"), "\n")
			if !strings.HasPrefix(first, "starter: ") {
				t.Fatalf("stderr does not start with a 'starter: ...' line:\n%s", errOut)
			}
			if c.code == exitFailure && rest != "" || c.code == exitUsage && !strings.Contains(rest, "Usage:\n  starter enable") {
				t.Fatalf("stderr is not one line, or one line and the usage of enable for a usage error:\n%s", errOut)
			}
			if !strings.Contains(first, c.want) {
				t.Fatalf("stderr %q does not contain %q", first, c.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Fatalf("stack trace on stderr: %s", errOut)
			}
		})
	}

	// The event stays as it was after every failed call.
	if n := queryInt(t, pool, `SELECT count(*) FROM events WHERE matchmaking_enabled`); n != 0 {
		t.Errorf("a failed enable still enabled %d events", n)
	}
}

// TestRowsQueuedWhileNoWorkerRanArePickedUp enables an event straight in SQL,
// as the web app would, while no worker runs and no workflow exists. The
// worker started afterwards must find the rows on its own, and stop cleanly
// on SIGTERM.
func TestRowsQueuedWhileNoWorkerRanArePickedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "stranded", demodata.Generate(41, 80))
	if _, err := pool.Exec(context.Background(), `UPDATE events SET matchmaking_enabled = true WHERE id = $1`, eventID); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID); n != 80 {
		t.Fatalf("enabling queued %d members, want 80", n)
	}

	w := e.startWorker()
	waitFor(t, 30*time.Second, "the stranded queue to drain", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	})
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)

	// The operator's re-match of an enabled event goes round again and
	// ends where it was.
	before := storedLists(t, pool, eventID)
	if out, errOut, code := e.starter("enable", "stranded", "--rematch", "--wait", "--timeout", "1m"); code != 0 ||
		!strings.Contains(out, "80 members queued") {
		t.Fatalf("starter enable --rematch exited %d: %s %s", code, out, errOut)
	}
	checkInvariants(t, pool, eventID, topN)
	if fmt.Sprint(storedLists(t, pool, eventID)) != fmt.Sprint(before) {
		t.Errorf("re-matching an unchanged event changed its lists")
	}

	// The worker's Prometheus endpoint carries the app's and the SDK's series.
	scrape := scrapeMetrics(t, w)
	// The temporal_ names are ones Temporal's SDK dashboards query. Batches
	// of up to 50 members run as local activities, hence no
	// temporal_activity_execution_latency here.
	for _, series := range []string{"matchmaking_batches_total", "matchmaking_users_matched_total", "matchmaking_queue_depth",
		"matchmaking_batch_duration_seconds", "temporal_request_total{", "temporal_request_latency_seconds_bucket{",
		"temporal_workflow_task_execution_latency_seconds_bucket{", "temporal_workflow_task_schedule_to_start_latency_seconds_bucket{",
		"temporal_local_activity_execution_latency_seconds_bucket{", "temporal_num_pollers{"} {
		if !strings.Contains(scrape, series) {
			t.Errorf("metrics lack %s", series)
		}
	}
	// Matching 80 members scores each pair that may meet at least once.
	if m := regexp.MustCompile(`(?m)^matchmaking_pairs_scored_total (\S+)$`).FindStringSubmatch(scrape); m == nil {
		t.Errorf("metrics lack matchmaking_pairs_scored_total")
	} else if scored, err := strconv.ParseFloat(m[1], 64); err != nil || scored < 80*79/4 {
		t.Errorf("matchmaking_pairs_scored_total is %s after matching 80 members, want at least %d", m[1], 80*79/4)
	}
	// Disabling the event finishes its workflow, which the SDK counts.
	if out, errOut, code := e.starter("disable", "stranded"); code != 0 || !strings.Contains(out, "its workflow finished") {
		t.Fatalf("starter disable exited %d: %s %s", code, out, errOut)
	}
	scrape = scrapeMetrics(t, w)
	for _, series := range []string{"temporal_workflow_completed_total{", "temporal_workflow_endtoend_latency_seconds_bucket{"} {
		if !strings.Contains(scrape, series) {
			t.Errorf("metrics lack %s", series)
		}
	}

	w.stop(syscall.SIGTERM)
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("worker exited %d on SIGTERM, want 0; log:\n%s", code, w.logs.String())
	}
	if !strings.Contains(w.logs.String(), "shutting down") {
		t.Errorf("worker did not log its shutdown:\n%s", w.logs.String())
	}
}

var metricsURL = regexp.MustCompile(`metrics=(http://\S+/metrics)`)

// scrapeMetrics reads the worker's /metrics, whose address it logged.
func scrapeMetrics(t *testing.T, w *workerProcess) string {
	t.Helper()
	m := metricsURL.FindStringSubmatch(w.logs.String())
	if m == nil {
		t.Fatalf("the worker did not log its metrics address:\n%s", w.logs.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatalf("scrape %s: %v", m[1], err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", m[1], resp.StatusCode, err)
	}
	return string(body)
}

// TestDisabledEventLeavesTheMetrics: once an event is disabled, the
// worker stops exporting its per-event series (within SAFETY_POLL).
func TestDisabledEventLeavesTheMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"SAFETY_POLL": "1s"})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "metrics-gone", demodata.Generate(41, 40))
	w := e.startWorker()
	e.mustStarter("enable", "metrics-gone", "--wait", "--timeout", "1m")
	label := `event_id="` + eventID + `"`
	waitFor(t, 10*time.Second, "the event's series", func() bool { return strings.Contains(scrapeMetrics(t, w), label) })
	e.mustStarter("disable", "metrics-gone")
	waitFor(t, 15*time.Second, "the disabled event's series to go", func() bool {
		return !strings.Contains(scrapeMetrics(t, w), label)
	})
}
