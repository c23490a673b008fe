package e2e

// The chaos suite of issue 8 ("Nothing blocks an event"): `make chaos`.
// It runs the resilience scenarios at full size plus kill -9, SIGSTOP past
// the lease, pg_terminate_backend, a PostgreSQL restart, a dev-server
// restart and a churn soak, ends every scenario with the data-contract
// checks and a from-scratch top-N, and prints a table of the results
// (written to $CHAOS_TABLE for docs/RELIABILITY.md). It restarts PostgreSQL,
// so it must run alone on the machine.

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

func TestChaos(t *testing.T) {
	if os.Getenv("CHAOS") != "1" {
		t.Skip("chaos suite: set CHAOS=1 (make chaos does); it restarts PostgreSQL, so run it on its own")
	}
	testenv.RequireIntegration(t)
	var rows []*scenarioRow
	t.Cleanup(func() {
		table := chaosTable(rows)
		fmt.Printf("\nchaos suite results (%s):\n\n%s\n", time.Now().Format("2006-01-02"), table)
		if path := os.Getenv("CHAOS_TABLE"); path != "" {
			if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
				t.Errorf("write %s: %v", path, err)
			}
		}
	})
	soak := envDuration(t, "CHAOS_SOAK", 5*time.Minute)

	runScenario(t, &rows, "poison values: NULL tag, 5,000 tags, 1 MB bio, RTL, control chars, 0-based and 2-D arrays, empty tags",
		func(t *testing.T, row *scenarioRow) { poisonValuesScenario(t, row, 2000) })
	runScenario(t, &rows, "poison member (FK on matches.user_id): quarantined, then retry-quarantined",
		func(t *testing.T, row *scenarioRow) { poisonQuarantineScenario(t, row, "user_id", 2000) })
	runScenario(t, &rows, "poison member (FK on matches.matched_user_id): quarantined, then retry-quarantined",
		func(t *testing.T, row *scenarioRow) { poisonQuarantineScenario(t, row, "matched_user_id", 2000) })
	runScenario(t, &rows, "churn 20 changes/s on 5,000 members for 60 s",
		func(t *testing.T, row *scenarioRow) {
			churnScenario(t, row, churnParams{members: 5000, rate: 20, duration: time.Minute, seed: 11})
		})
	runScenario(t, &rows, "churn 100 changes/s on 20,000 members for 60 s",
		func(t *testing.T, row *scenarioRow) {
			churnScenario(t, row, churnParams{members: 20000, rate: 100, duration: time.Minute, seed: 13})
		})
	runScenario(t, &rows, "member moved to another event, member given a new user_id", moveScenario)
	runScenario(t, &rows, "worker BATCH_SIZE=200, starter BATCH_SIZE=3000", workerSettingsScenario)
	runScenario(t, &rows, fmt.Sprintf("kill -9 of the worker ×%d during a 3,000-member event", envInt(t, "CHAOS_KILLS", 20)), killScenario)
	runScenario(t, &rows, "SIGSTOP of worker A past its lease while worker B runs (anywhere, inside a transaction)", sigstopScenario)
	runScenario(t, &rows, "pg_terminate_backend of every worker connection, repeatedly", terminateScenario)
	runScenario(t, &rows, "PostgreSQL restart mid-event", postgresRestartScenario)
	runScenario(t, &rows, "Temporal dev-server kill -9 and restart on its persisted database", devServerRestartScenario)
	runScenario(t, &rows, fmt.Sprintf("member-churn soak, 20 changes/s on 5,000 members for %s (RSS, goroutines)", soak),
		func(t *testing.T, row *scenarioRow) {
			churnScenario(t, row, churnParams{members: 5000, rate: 20, duration: soak, soak: true, seed: 17})
		})
}

func envInt(t *testing.T, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	return def
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a duration such as 5m", name, v)
		}
		return d
	}
	return def
}

// multiBatchEvent is the setting of the process-level scenarios: 3,000
// members matched 200 at a time (15 batches), activities bounded by 5 s.
func multiBatchEvent(t *testing.T, code string, seed int64, extra map[string]string) (*env, *pgxpool.Pool, string) {
	vars := map[string]string{"BATCH_SIZE": "200", "MAX_RUNTIME_MS": "5000"}
	for k, v := range extra {
		vars[k] = v
	}
	e := newEnv(t, vars)
	pool := observerPool(t, e.dbURL)
	eventID := loadEvent(t, pool, code, demodata.Generate(seed, 3000))
	return e, pool, eventID
}

// leaseOf is the lease the worker gives its claims: observed on the queue
// when a claim is live, else the worker's formula (worker/main.go leaseFor).
func leaseOf(pool *pgxpool.Pool, eventID string, maxRuntime time.Duration) time.Duration {
	var secs *float64
	_ = pool.QueryRow(context.Background(), `
		SELECT extract(epoch FROM max(lease_expires_at - claimed_at))::float8 FROM matchmaking_queue
		WHERE event_id = $1 AND claim_token IS NOT NULL`, eventID).Scan(&secs)
	if secs != nil && *secs > 0 {
		return time.Duration(*secs * float64(time.Second))
	}
	return 4*maxRuntime + time.Minute
}

// webAppChanges inserts, updates and deletes a few members, as the web
// app would between two runs.
func webAppChanges(t *testing.T, pool *pgxpool.Pool, eventID string, newcomers []attendee.Profile) {
	t.Helper()
	if _, err := store.New(pool).InsertMembers(context.Background(), eventID, newcomers); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE all_events_members SET bio = bio || ' Lately into kite surfing and robotics.', updated_at = now()
		 WHERE event_id = $1 AND user_id IN (SELECT user_id FROM all_events_members WHERE event_id = $1 ORDER BY random() LIMIT 3)`,
		`DELETE FROM all_events_members
		 WHERE event_id = $1 AND user_id IN (SELECT user_id FROM all_events_members WHERE event_id = $1 ORDER BY random() LIMIT 2)`,
	} {
		if _, err := pool.Exec(context.Background(), sql, eventID); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitNewcomer inserts one member and returns how long until their list is
// full; the listener (or its safety poll) must still be working.
func awaitNewcomer(t *testing.T, pool *pgxpool.Pool, eventID string, m attendee.Profile, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	m.UserID = randomUUID()
	if _, err := store.New(pool).InsertMembers(context.Background(), eventID, []attendee.Profile{m}); err != nil {
		t.Fatal(err)
	}
	return waitUntil(timeout, func() bool {
		return tryInt(pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, eventID, m.UserID) == topN &&
			fullyMatched(pool, eventID)
	})
}

// recoveredAndListening ends a run that disturbed the worker's connections
// or servers: the event is fully matched again (finalChecks, recorded on
// row), and a newcomer inserted afterwards gets a list within 15 s, which
// needs the listener back. It returns how long the newcomer took.
func recoveredAndListening(t *testing.T, row *scenarioRow, pool *pgxpool.Pool, eventID string, since time.Time,
	w *workerProcess, newcomer attendee.Profile, after string) time.Duration {
	t.Helper()
	row.recovered(finalChecks(t, row, pool, eventID, since, 3*time.Minute, w))
	took, ok := awaitNewcomer(t, pool, eventID, newcomer, 15*time.Second)
	if !ok {
		t.Errorf("a newcomer inserted after %s has no list after 15 s: the listener did not come back", after)
	}
	return took
}

// finalChecks is how every process-level run ends: fully matched within
// timeout, the data contract, and a from-scratch top-N. It returns how long
// after since the event was fully matched.
func finalChecks(t *testing.T, row *scenarioRow, pool *pgxpool.Pool, eventID string, since time.Time, timeout time.Duration, workers ...*workerProcess) time.Duration {
	t.Helper()
	remaining := timeout - time.Since(since)
	_, ok := waitUntil(remaining, func() bool { return fullyMatched(pool, eventID) })
	took := time.Since(since)
	row.countLeftovers(t, pool, eventID)
	for i, w := range workers {
		if !w.alive() {
			t.Errorf("worker %d exited (%v); nothing restarts it here:\n%s", i+1, w.cmd.ProcessState, tail(w.logs.String(), 30))
		}
	}
	if !ok {
		lost, stuck, _ := leftovers(context.Background(), pool, eventID, nil)
		t.Fatalf("not fully matched %s after the disturbance: %d members without a full list, %d queued", timeout, lost, stuck)
	}
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)
	return took
}

// ---------------------------------------------------------------------------

// killScenario kills the worker with SIGKILL at a random moment of a
// multi-batch run, CHAOS_KILLS times, restarting it at once each time. The
// moment is drawn by progress: once the queue has fallen below a random
// fraction of the event, plus up to 300 ms, so that it lands in any step.
func killScenario(t *testing.T, row *scenarioRow) {
	kills := envInt(t, "CHAOS_KILLS", 20)
	e, pool, eventID := multiBatchEvent(t, "kill9", 171, nil)
	extra := demodata.Generate(172, 5*kills)
	w := startWorkerProc(t, e)
	mustStarterT(t, e, "enable", "kill9", "--wait", "--timeout", "5m")
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 1))
	t.Logf("kill moments drawn with seed %d", seed)

	late := 0
	parent := t
	for i := range kills {
		row.Runs++
		ok := t.Run(fmt.Sprintf("kill-%02d", i+1), func(t *testing.T) {
			webAppChanges(t, pool, eventID, extra[5*i:5*i+5])
			mustStarterT(t, e, "rematch", "kill9")
			members := queryInt(t, pool, `SELECT count(*) FROM all_events_members WHERE event_id = $1`, eventID)
			below := int(float64(members) * (0.05 + 0.9*rng.Float64()))
			waitUntil(2*time.Minute, func() bool {
				n := tryInt(pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID)
				return n >= 0 && n <= below
			})
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			queued := tryInt(pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID)
			w.stop(syscall.SIGKILL)
			w = startWorkerProc(parent, e)
			if queued == 0 {
				late++
			}
			took := finalChecks(t, row, pool, eventID, time.Now(), 3*time.Minute, w)
			row.recovered(took)
			t.Logf("killed with %d of %d queued; fully matched %s after the restart", queued, members, took.Round(time.Millisecond))
		})
		if ok {
			row.Passed++
		}
	}
	if late > 0 {
		row.note("%d kills landed after the run had finished", late)
	}
}

// sigstopScenario stops worker A with SIGSTOP for longer than its lease
// while worker B runs: once at a random moment, and twice while A has a
// transaction open (found in pg_stat_activity by A's client ports). B must
// finish the event while A is stopped, later than an undisturbed run by no
// more than the engine's session timeouts (CHAOS_SESSION_TIMEOUT, 30 s),
// which end A's open transaction well before its lease runs out.
func sigstopScenario(t *testing.T, row *scenarioRow) {
	const maxRuntime = 5 * time.Second
	// The engine's session settings (store/store.go): statement_timeout 30s,
	// idle_in_transaction_session_timeout 10s, lock_timeout 20s. A stopped
	// worker may delay the event by at most the longest of them.
	sessionTimeouts := envDuration(t, "CHAOS_SESSION_TIMEOUT", 30*time.Second)
	e, pool, eventID := multiBatchEvent(t, "sigstop", 181, nil)
	a := startWorkerProc(t, e)
	b := startWorkerProc(t, e)
	start := time.Now()
	mustStarterT(t, e, "enable", "sigstop", "--wait", "--timeout", "5m")
	base := time.Since(start)
	t.Logf("undisturbed run with two workers: %s", base.Round(time.Millisecond))

	for _, v := range []struct {
		name string
		inTx bool
	}{{"stop-anywhere", false}, {"stop-in-transaction-1", true}, {"stop-in-transaction-2", true}} {
		row.Runs++
		ok := t.Run(v.name, func(t *testing.T) {
			before := committedBatches(pool, eventID)
			mustStarterT(t, e, "rematch", "sigstop")
			var stopped time.Time
			if v.inTx {
				var what string
				stopped, what = stopInsideTransaction(t, pool, a, 60*time.Second)
				t.Logf("stopped worker A inside a transaction: %s", what)
			} else {
				waitUntil(30*time.Second, func() bool { return committedBatches(pool, eventID) > before })
				time.Sleep(time.Duration(mrand.Float64() * float64(base) / 2))
				if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				stopped = time.Now()
			}
			lease := leaseOf(pool, eventID, maxRuntime)
			delay, drained := waitUntil(lease, func() bool { return fullyMatched(pool, eventID) })
			// Keep A stopped past its lease, then let it go on with its stale work.
			time.Sleep(time.Until(stopped.Add(lease + 5*time.Second)))
			if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			if !drained {
				_, _ = waitUntil(60*time.Second, func() bool { return fullyMatched(pool, eventID) })
				delay = time.Since(stopped)
				t.Errorf("the event waited for the stopped worker: fully matched %s after SIGSTOP (lease %s, undisturbed run %s)",
					delay.Round(time.Millisecond), lease, base.Round(time.Millisecond))
			}
			row.recovered(delay)
			extra := delay - base
			t.Logf("fully matched %s after SIGSTOP: %s later than undisturbed (lease %s, session-timeout target %s)",
				delay.Round(time.Millisecond), extra.Round(time.Millisecond), lease, sessionTimeouts)
			row.note("%s: +%.1f s", v.name, extra.Seconds())
			if drained && extra > sessionTimeouts {
				t.Errorf("the stopped worker delayed the event by %s, more than the session timeouts (%s)", extra.Round(time.Millisecond), sessionTimeouts)
			}
			time.Sleep(10 * time.Second) // A finds its claims gone
			finalChecks(t, row, pool, eventID, time.Now(), time.Minute, a, b)
		})
		if ok {
			row.Passed++
		}
	}
}

// stopInsideTransaction polls pg_stat_activity for a backend of w's
// connections inside a transaction and stops w at once; it retries (SIGCONT)
// when the transaction had ended by then.
func stopInsideTransaction(t *testing.T, pool *pgxpool.Pool, w *workerProcess, timeout time.Duration) (time.Time, string) {
	t.Helper()
	pid := w.cmd.Process.Pid
	deadline := time.Now().Add(timeout)
	attempts := 0
	for time.Now().Before(deadline) {
		ports, err := postgresClientPorts(pid)
		if err != nil {
			t.Fatalf("connections of worker %d: %v", pid, err)
		}
		var n int
		if len(ports) > 0 {
			_ = pool.QueryRow(context.Background(), `
				SELECT count(*) FROM pg_stat_activity
				WHERE client_port = ANY($1) AND xact_start IS NOT NULL AND state IN ('active', 'idle in transaction')`,
				ports).Scan(&n)
		}
		if n == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		attempts++
		if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		time.Sleep(50 * time.Millisecond) // a running statement ends; its transaction stays open
		var what *string
		_ = pool.QueryRow(context.Background(), `
			SELECT string_agg(format('%s (%s s): %s', state, round(extract(epoch FROM now() - xact_start)::numeric, 2),
			                         left(regexp_replace(query, '\s+', ' ', 'g'), 80)), '; ')
			FROM pg_stat_activity
			WHERE client_port = ANY($1) AND state = 'idle in transaction'`, ports).Scan(&what)
		if what != nil {
			return at, fmt.Sprintf("%s (attempt %d)", *what, attempts)
		}
		_ = w.cmd.Process.Signal(syscall.SIGCONT)
	}
	t.Fatalf("worker A had no transaction open at a SIGSTOP in %s (%d attempts)", timeout, attempts)
	return time.Time{}, ""
}

// terminateScenario cuts every connection of the test database (the worker's
// pool and its LISTEN connection) every 700 ms, six times per run.
func terminateScenario(t *testing.T, row *scenarioRow) {
	e, pool, eventID := multiBatchEvent(t, "terminate", 191, nil)
	admin := openPool(t, testenv.AdminURL())
	dbName := databaseName(t, e.dbURL)
	newcomers := demodata.Generate(192, 3)
	w := startWorkerProc(t, e)
	for run := range 3 {
		row.Runs++
		ok := t.Run(fmt.Sprintf("run-%d", run+1), func(t *testing.T) {
			before := committedBatches(pool, eventID)
			if run == 0 {
				mustStarterT(t, e, "enable", "terminate")
			} else {
				mustStarterT(t, e, "rematch", "terminate")
			}
			waitUntil(30*time.Second, func() bool { return committedBatches(pool, eventID) > before })
			cut := 0
			for range 6 {
				var n int
				if err := admin.QueryRow(context.Background(), `
					SELECT count(*) FROM (
						SELECT pg_terminate_backend(pid) FROM pg_stat_activity
						WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> $2) x`,
					dbName, observerApp).Scan(&n); err != nil {
					t.Fatal(err)
				}
				cut += n
				time.Sleep(700 * time.Millisecond)
			}
			last := time.Now()
			t.Logf("terminated %d backends", cut)
			if cut == 0 {
				t.Errorf("no backend of the worker was found to terminate")
			}
			took := recoveredAndListening(t, row, pool, eventID, last, w, newcomers[run], "the cuts")
			t.Logf("newcomer after the cuts matched in %s", took.Round(time.Millisecond))
		})
		if ok {
			row.Passed++
		}
	}
}

// postgresRestartScenario restarts the PostgreSQL server while a
// multi-batch event is being matched. Every other database on the server
// sees the restart too, so it refuses to run while other clients are
// connected unless CHAOS_PG_RESTART=force.
func postgresRestartScenario(t *testing.T, row *scenarioRow) {
	e, pool, eventID := multiBatchEvent(t, "pgrestart", 201, nil)
	admin := openPool(t, testenv.AdminURL())
	dbName := databaseName(t, e.dbURL)
	// Other clients, or other tests' databases (whose tests may be between
	// two connections), mean someone else is using the server.
	var others *string
	if err := admin.QueryRow(context.Background(), `
		SELECT string_agg(x, ', ') FROM (
			SELECT DISTINCT coalesce(datname, '?') || ' (' || coalesce(nullif(application_name, ''), 'unnamed') || ')' AS x
			FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname IS DISTINCT FROM $1
			UNION
			SELECT datname || ' (a test database)' FROM pg_database WHERE datname LIKE 'mm\_test\_%' AND datname <> $1) o`,
		dbName).Scan(&others); err != nil {
		t.Fatal(err)
	}
	if others != nil && os.Getenv("CHAOS_PG_RESTART") != "force" {
		row.note("skipped: other clients connected")
		t.Skipf("other clients are connected to PostgreSQL (%s); a restart would break them. Run make chaos on its own, "+
			"or set CHAOS_PG_RESTART=force", *others)
	}
	restart := os.Getenv("CHAOS_PG_RESTART_CMD")
	if restart == "" {
		versions, err := os.ReadDir("/etc/postgresql")
		if err != nil || len(versions) != 1 {
			t.Skipf("cannot tell the PostgreSQL cluster from /etc/postgresql (%v); set CHAOS_PG_RESTART_CMD", err)
		}
		restart = "pg_ctlcluster --skip-systemctl-redirect " + versions[0].Name() + " main restart"
	}

	w := startWorkerProc(t, e)
	mustStarterT(t, e, "enable", "pgrestart")
	waitUntil(30*time.Second, func() bool { return committedBatches(pool, eventID) > 0 })
	queued := tryInt(pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID)
	began := time.Now()
	if out, err := exec.Command("sh", "-c", restart).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", restart, err, out)
	}
	up := time.Now()
	t.Logf("restarted PostgreSQL (%s) with %d members queued; it was down for about %s", restart, queued, up.Sub(began).Round(time.Millisecond))
	if queued == 0 {
		row.note("the run had finished before the restart")
	}
	took := recoveredAndListening(t, row, pool, eventID, up, w, demodata.Generate(202, 1)[0], "the restart")
	row.note("newcomer after restart matched in %.1f s", took.Seconds())
}

// devServer is a Temporal dev server of this scenario's own, persisted to a
// file so that it can be killed and started again.
type devServer struct {
	cli, dbFile           string
	port, httpPort, mport int
	cmd                   *exec.Cmd
	logs                  *syncBuffer
}

func (s *devServer) start(t *testing.T) {
	t.Helper()
	s.logs = &syncBuffer{}
	s.cmd = exec.Command(s.cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(s.port), "--http-port", strconv.Itoa(s.httpPort), "--metrics-port", strconv.Itoa(s.mport),
		"--db-filename", s.dbFile, "--log-level", "error")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the dev server: %v", err)
	}
	_, ok := waitUntil(60*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", s.address(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !ok {
		t.Fatalf("the dev server did not listen on %s within 60 s:\n%s", s.address(), s.logs.String())
	}
}

func (s *devServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func (s *devServer) address() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// devServerRestartScenario kills the event's Temporal dev server with
// SIGKILL mid-event and starts it again on the same database file.
func devServerRestartScenario(t *testing.T, row *scenarioRow) {
	srv := &devServer{cli: testenv.TemporalCLI(t), dbFile: filepath.Join(t.TempDir(), "temporal.db"),
		port: freePort(t), httpPort: freePort(t), mport: freePort(t)}
	srv.start(t)
	t.Cleanup(srv.kill)
	e, pool, eventID := multiBatchEvent(t, "devserver", 211, map[string]string{"TEMPORAL_ADDRESS": srv.address()})
	w := startWorkerProc(t, e)
	mustStarterT(t, e, "enable", "devserver")
	waitUntil(30*time.Second, func() bool { return committedBatches(pool, eventID) > 0 })
	queued := tryInt(pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID)
	srv.kill()
	time.Sleep(3 * time.Second)
	srv.start(t)
	up := time.Now()
	t.Logf("killed the dev server with %d members queued; back after 3 s on %s", queued, srv.dbFile)
	if queued == 0 {
		row.note("the run had finished before the kill")
	}
	took := recoveredAndListening(t, row, pool, eventID, up, w, demodata.Generate(212, 1)[0], "the restart")
	row.note("newcomer after restart matched in %.1f s", took.Seconds())
	if out := mustStarterT(t, e, "status", "devserver"); !strings.Contains(out, "devserver") {
		t.Errorf("starter status after the restart:\n%s", out)
	}
}
