package e2e

// What a worker does with its running batch when it is told to stop
// (SIGTERM, as in a deploy), and its health endpoints (issue 10).
//
// Two workers share an event whose one batch is held up in its scoring
// step: the test holds a SHARE lock on matchmaking_staged_matches, which
// the step's write of the staged lists waits for. (It used to be the AI
// insight step, until batches stopped waiting for the model.) The worker
// running the step is sent SIGTERM and the test measures how long the
// batch waits before the other worker takes it up, against the claim's
// lease (which is what a batch waited for when nobody gave it back).

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/demodata"
)

const (
	// drainMembers all fit in one batch of more than 50, so scoring and
	// insights are regular activities, which either worker may run, and
	// fewer than 2,000, so the batch is not scored in shards.
	drainMembers    = 200
	drainMaxRuntime = 30 * time.Second
	// drainHold is how long after SIGTERM the test lets a step that is to
	// finish go on: well within a long WORKER_STOP_TIMEOUT.
	drainHold = 2 * time.Second
)

// drainLease is the lease the worker gives a claim (worker/main.go
// leaseFor): 4 × MAX_RUNTIME_MS + 1 min.
const drainLease = 4*drainMaxRuntime + time.Minute

// TestStoppedWorkerReleasesABatchItCannotFinish: WORKER_STOP_TIMEOUT is
// shorter than what is left of the batch, so the stopping worker releases
// it and the other worker claims it again at once.
func TestStoppedWorkerReleasesABatchItCannotFinish(t *testing.T) {
	t.Parallel()
	r := runDrain(t, 3*time.Second)
	// The deadline (2.4 s for 3 s), then the workflow moving to the other
	// worker and claiming: seconds, not the lease.
	if bound := 15 * time.Second; r.takenUp > bound {
		t.Errorf("the batch was taken up %s after SIGTERM, want under %s (the lease is %s)", r.takenUp, bound, drainLease)
	}
	if !r.released {
		t.Errorf("the batch was not released although the stop timeout was too short for it")
	}
	if !strings.Contains(r.runnerLog, "released its batch") || !regexp.MustCompile(`batches_released=1\b`).MatchString(r.runnerLog) {
		t.Errorf("the stopped worker does not say it released the batch:\n%s", tail(r.runnerLog, 20))
	}
}

// TestStoppedWorkerFinishesItsRunningBatch: WORKER_STOP_TIMEOUT is long
// enough, so the stopping worker finishes the step it runs and the batch
// commits without going round again.
func TestStoppedWorkerFinishesItsRunningBatch(t *testing.T) {
	t.Parallel()
	r := runDrain(t, 25*time.Second)
	if r.released {
		t.Errorf("the batch was released although the stop timeout left it time to finish")
	}
	if !r.committed {
		t.Errorf("the batch the stopped worker ran was not committed")
	}
	if !regexp.MustCompile(`steps_finished=[1-9]`).MatchString(r.runnerLog) {
		t.Errorf("the stopped worker does not say it finished its step:\n%s", tail(r.runnerLog, 20))
	}
}

// drainResult is what runDrain saw after SIGTERM.
type drainResult struct {
	takenUp   time.Duration // until the other worker took the batch up (or it committed)
	how       string        // how it was taken up
	exited    time.Duration // until the stopped worker's process ended
	matched   time.Duration // until the event was fully matched
	released  bool          // the batch was released
	committed bool          // the batch itself was committed
	runnerLog string
}

func runDrain(t *testing.T, stopTimeout time.Duration) drainResult {
	e := newEnv(t, map[string]string{
		"BATCH_SIZE":          fmt.Sprint(drainMembers),
		"MAX_RUNTIME_MS":      fmt.Sprint(drainMaxRuntime.Milliseconds()),
		"WORKER_STOP_TIMEOUT": stopTimeout.String(),
	})
	pool := observerPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "drain", demodata.Generate(61, drainMembers))

	// Each worker connects under an application name of its own, so the
	// database tells whose step waits.
	apps := []string{"drain-worker-a", "drain-worker-b"}
	workers := make([]*workerProcess, len(apps))
	sep := "?"
	if strings.Contains(e.workerURL, "?") {
		sep = "&"
	}
	for i, app := range apps {
		e.workerVars["DATABASE_URL"] = e.workerURL + sep + "application_name=" + app
		workers[i] = e.startWorker()
	}
	for _, w := range workers {
		waitFor(t, 30*time.Second, "the worker to start", func() bool { return strings.Contains(w.logs.String(), "worker started") })
	}
	hold, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(context.Background()) }()
	if _, err := hold.Exec(context.Background(), `LOCK TABLE matchmaking_staged_matches IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	held := true
	unlock := func() {
		if held {
			held = false
			if err := hold.Rollback(context.Background()); err != nil {
				t.Errorf("let the step go on: %v", err)
			}
		}
	}
	e.mustStarter("enable", "drain")

	// Wait until one worker's scoring step waits for the lock. The drain
	// tests run in parallel with the same application names, each on a
	// database of its own.
	waiting := func(app string) bool {
		return tryInt(pool, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`, app) > 0
	}
	// The release of a cancelled step deletes its staged lists, so it waits
	// for the same lock: the lock must go as soon as the release waits, or
	// the release ends after the SDK's own cancellation at
	// WORKER_STOP_TIMEOUT and its report is lost. (The step itself deletes
	// its staged lists before writing them, so only a wait after the stop
	// deadline is the release's.)
	releasing := func(app string) bool {
		return tryInt(pool, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'
			AND query LIKE '%DELETE FROM matchmaking_staged_matches%'`, app) > 0
	}
	runner, other := -1, -1
	waitFor(t, 60*time.Second, "a worker's scoring step to wait for the staged lists' lock", func() bool {
		for i, app := range apps {
			if waiting(app) {
				runner, other = i, 1-i
				return true
			}
		}
		return false
	})
	var token string
	var claimed int
	if err := pool.QueryRow(context.Background(), `
		SELECT token, cardinality(claimed_users) FROM matchmaking_batches
		WHERE event_id = $1 AND committed_at IS NULL AND released_at IS NULL
		ORDER BY claimed_at DESC LIMIT 1`, eventID).Scan(&token, &claimed); err != nil {
		t.Fatalf("find the running batch: %v", err)
	}
	stopped := time.Now()
	if err := workers[runner].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var r drainResult
	for time.Since(stopped) < drainLease {
		since := time.Since(stopped)
		// A step the stop timeout leaves time for goes on after drainHold;
		// one it does not is cancelled at the stop deadline, and the lock
		// then goes so that its batch can be released: when the runner is
		// seen not waiting, or waiting in the release, and a second after
		// the deadline in any case.
		if held && ((stopTimeout > drainHold+5*time.Second && since > drainHold) || !waiting(apps[runner]) ||
			(since > activities.StopDeadline(stopTimeout) && releasing(apps[runner])) ||
			since > activities.StopDeadline(stopTimeout)+time.Second) {
			unlock()
		}
		if r.exited == 0 && !workers[runner].alive() {
			r.exited = since
		}
		// Fully matched is read before taken up: a batch committed between
		// the two reads is then seen taken up in the same pass, never
		// "never taken up" although the event is done.
		matchedNow := r.matched == 0 && fullyMatched(pool, eventID)
		if r.takenUp == 0 {
			switch {
			// The batch row stays after its commit: a claim and commit
			// quicker than one pass of this loop still shows.
			case tryInt(pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1 AND claim_token <> $2`, eventID, token) > 0 ||
				tryInt(pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND token <> $2
					AND claimed_at > (SELECT claimed_at FROM matchmaking_batches WHERE token = $2)`, eventID, token) > 0:
				r.takenUp, r.how = since, "its members were claimed by another batch"
			case tryInt(pool, `SELECT count(*) FROM matchmaking_batches WHERE token = $1 AND committed_at IS NOT NULL`, token) > 0:
				r.takenUp, r.how = since, "it was committed"
			}
		}
		if matchedNow {
			r.matched = since
		}
		if r.exited > 0 && r.matched > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.released = tryInt(pool, `SELECT count(*) FROM matchmaking_batches WHERE token = $1 AND released_at IS NOT NULL`, token) > 0
	r.committed = tryInt(pool, `SELECT count(*) FROM matchmaking_batches WHERE token = $1 AND committed_at IS NOT NULL`, token) > 0
	r.runnerLog = workers[runner].logs.String()

	t.Logf("WORKER_STOP_TIMEOUT=%s, lease %s; batch %s of %d members scored by %s, whose step waited on the lock, and %s stood by",
		stopTimeout, drainLease, token, claimed, apps[runner], apps[other])
	t.Logf("after SIGTERM: taken up by the other worker %s (%s); stopped worker exited %s; event fully matched %s; batch released=%v committed=%v",
		orNever(r.takenUp), r.how, orNever(r.exited), orNever(r.matched), r.released, r.committed)

	var shutdown []string
	for _, line := range strings.Split(r.runnerLog, "\n") {
		if after, ok := strings.CutPrefix(line, "time="); ok && strings.Contains(after, "level=") && shutdownLine.MatchString(line) {
			shutdown = append(shutdown, line)
		}
	}
	t.Logf("the stopped worker's shutdown log:\n%s", strings.Join(shutdown, "\n"))

	if r.exited == 0 {
		t.Fatalf("the stopped worker was still running %s after SIGTERM", drainLease)
	}
	if code := workers[runner].cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the stopped worker exited %d, want 0", code)
	}
	if limit := stopTimeout + 5*time.Second; r.exited > limit {
		t.Errorf("the stopped worker took %s to exit with WORKER_STOP_TIMEOUT=%s, want under %s", r.exited, stopTimeout, limit)
	}
	if r.takenUp == 0 {
		t.Fatalf("nobody took the batch up within the lease (%s)", drainLease)
	}
	if r.takenUp > drainLease/4 {
		t.Errorf("the batch was taken up %s after SIGTERM: not well under the lease (%s)", r.takenUp, drainLease)
	}
	if r.matched == 0 {
		t.Fatalf("the event was not fully matched within %s of SIGTERM", drainLease)
	}
	checkInvariants(t, pool, eventID, topN)
	return r
}

// shutdownLine picks the worker's own lines about stopping.
var shutdownLine = regexp.MustCompile(`shutting down|stop deadline|worker stopping|released|worker stopped`)

func orNever(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}

var healthURL = regexp.MustCompile(`health=(http://(\S+)/readyz)`)

// TestWorkerHealthEndpoints: /healthz and /readyz on METRICS_ADDR, and
// `worker healthcheck` asking them, for a real worker.
func TestWorkerHealthEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.startWorker()
	var readyz, addr string
	waitFor(t, 30*time.Second, "the worker to log its health endpoint", func() bool {
		m := healthURL.FindStringSubmatch(w.logs.String())
		if m != nil {
			readyz, addr = m[1], m[2]
		}
		return m != nil
	})
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Ready once the listener holds its LISTEN, a moment after start.
	waitFor(t, 15*time.Second, "/readyz to answer 200", func() bool { return get(readyz) == http.StatusOK })
	if code := get(strings.TrimSuffix(readyz, "/readyz") + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d, want 200", code)
	}
	healthcheck := func() (int, string) {
		cmd := exec.Command(suite.workerBin, "healthcheck")
		cmd.Env = append(e.workerEnviron(), "METRICS_ADDR="+addr)
		out, err := cmd.CombinedOutput()
		if exitErr, ok := err.(*exec.ExitError); ok {
			return exitErr.ExitCode(), string(out)
		} else if err != nil {
			t.Fatalf("run worker healthcheck: %v", err)
		}
		return 0, string(out)
	}
	if code, out := healthcheck(); code != 0 {
		t.Errorf("worker healthcheck exited %d with a ready worker:\n%s", code, out)
	}

	w.stop(syscall.SIGTERM)
	if code, out := healthcheck(); code != 1 || !strings.Contains(out, "worker healthcheck:") {
		t.Errorf("worker healthcheck exited %d after the worker stopped, want 1:\n%s", code, out)
	}
}
