package e2e

// Helpers of the chaos and resilience scenarios (issue 8, "Nothing blocks an
// event"): a churn generator, a newcomer-latency tracker, a progress sampler
// (queue depth and batch commits), non-fatal versions of the data-contract
// checks, process helpers (worker, signals, PostgreSQL backends of a process)
// and the results table.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// observerApp is the application_name of the tests' own connections, so
// that "terminate every connection of the worker" can spare them.
const observerApp = "chaos-observer"

// observerPool opens a pool on the test database whose connections are
// named observerApp and which is large enough for a churn generator.
func observerPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	return openPool(t, dbURL+sep+"application_name="+observerApp+"&pool_max_conns=16")
}

// ---------------------------------------------------------------------------
// The table: one row per scenario.

// scenarioRow is what the chaos suite reports about one scenario.
type scenarioRow struct {
	Name    string
	Runs    int
	Passed  int
	Lost    int // members left without a full list, summed over runs
	Stuck   int // queue rows left behind, summed over runs
	Recover []time.Duration
	Notes   []string
	Result  string // PASS, FAIL or SKIP
}

func (r *scenarioRow) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// recovered records one time to recover.
func (r *scenarioRow) recovered(d time.Duration) { r.Recover = append(r.Recover, d) }

// countLeftovers adds what an event has left unmatched or queued.
func (r *scenarioRow) countLeftovers(t *testing.T, pool *pgxpool.Pool, eventID string, skip ...string) {
	t.Helper()
	lost, stuck, err := leftovers(context.Background(), pool, eventID, skip)
	if err != nil {
		r.note("leftovers unknown: %v", err)
		return
	}
	r.Lost += lost
	r.Stuck += stuck
}

func formatRecover(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 1 {
		return fmt.Sprintf("%.1f s", s[0].Seconds())
	}
	return fmt.Sprintf("median %.1f s, max %.1f s", percentile(s, 50).Seconds(), s[len(s)-1].Seconds())
}

// chaosTable renders rows as a markdown table.
func chaosTable(rows []*scenarioRow) string {
	var b strings.Builder
	b.WriteString("| scenario | runs | passed | lost / stuck | time to recover | result | notes |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d / %d | %s | %s | %s |\n", r.Name, r.Runs, r.Passed, r.Lost, r.Stuck,
			formatRecover(r.Recover), r.Result, strings.ReplaceAll(strings.Join(r.Notes, "; "), "|", "/"))
	}
	return b.String()
}

// runScenario runs one scenario as a subtest and completes its row.
func runScenario(t *testing.T, rows *[]*scenarioRow, name string, fn func(t *testing.T, row *scenarioRow)) {
	row := &scenarioRow{Name: name}
	ran, skipped := false, false
	ok := t.Run(name, func(t *testing.T) {
		ran = true
		defer func() { skipped = t.Skipped() }()
		fn(t, row)
	})
	if !ran { // left out by -run
		return
	}
	*rows = append(*rows, row)
	switch {
	case skipped:
		row.Result = "SKIP"
	case ok:
		row.Result = "PASS"
	default:
		row.Result = "FAIL"
	}
	if row.Runs == 0 && !skipped {
		row.Runs = 1
		if ok {
			row.Passed = 1
		}
	}
}

// ---------------------------------------------------------------------------
// Non-fatal checks, for scenarios that count runs or exempt a member.

// leftovers counts members (other than skip) without a full list and queue
// rows (other than skip's) of the event. Every scenario event has far more
// than TOP_N eligible candidates per member, so a full list is TOP_N rows.
func leftovers(ctx context.Context, pool *pgxpool.Pool, eventID string, skip []string) (lost, stuck int, err error) {
	if skip == nil {
		skip = []string{}
	}
	err = pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM all_events_members a
		        LEFT JOIN (SELECT user_id, count(*) AS n FROM matches WHERE event_id = $1 GROUP BY user_id) m USING (user_id)
		        WHERE a.event_id = $1 AND coalesce(m.n, 0) <> $2 AND NOT a.user_id = ANY($3::uuid[])),
		       (SELECT count(*) FROM matchmaking_queue q WHERE q.event_id = $1 AND NOT q.user_id = ANY($3::uuid[]))`,
		eventID, topN, skip).Scan(&lost, &stuck)
	return lost, stuck, err
}

// fullyMatched reports whether the event's queue is empty and every member
// (other than skip) has a full list; a query error counts as "not yet".
func fullyMatched(pool *pgxpool.Pool, eventID string, skip ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost, stuck, err := leftovers(ctx, pool, eventID, skip)
	return err == nil && lost == 0 && stuck == 0
}

// waitUntil polls cond every 100 ms for at most timeout and says how long it
// took and whether it held; unlike waitFor it does not end the test.
func waitUntil(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// contractBreaks runs the data-contract rules of checks_test.go and returns
// the offending rows by rule, leaving out rows that name any of exempt.
func contractBreaks(t *testing.T, pool *pgxpool.Pool, eventID string, exempt ...string) map[string][]string {
	t.Helper()
	broken := map[string][]string{}
	for _, v := range violations {
		args := []any{eventID}
		if strings.Contains(v.query, "$2") {
			args = append(args, topN)
		}
		rows, err := pool.Query(context.Background(), v.query, args...)
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		for _, line := range bad {
			if !slices.ContainsFunc(exempt, func(id string) bool { return strings.Contains(line, id) }) {
				broken[v.rule] = append(broken[v.rule], line)
			}
		}
	}
	return broken
}

// checkInvariantsExcept is checkInvariants with some members exempt (a
// quarantined member has no list, and whoever lists it is not listed back).
func checkInvariantsExcept(t *testing.T, pool *pgxpool.Pool, eventID string, exempt ...string) {
	t.Helper()
	for rule, bad := range contractBreaks(t, pool, eventID, exempt...) {
		if len(bad) > 5 {
			bad = append(bad[:5], "…")
		}
		t.Errorf("rule broken: %s: %v", rule, bad)
	}
}

// normalizedPool loads the event's profiles for a from-scratch recompute,
// independently of the engine's own reader: array columns are read through
// unnest, so NULL elements are dropped, multi-dimensional arrays are
// flattened in storage order, and any lower bound reads as a plain list,
// the reading of a hostile array an organiser expects. Members in exclude
// are left out of the pool altogether.
func normalizedPool(t *testing.T, pool *pgxpool.Pool, eventID string, exclude []string) *matching.Pool {
	t.Helper()
	if exclude == nil {
		exclude = []string{}
	}
	rows, err := pool.Query(context.Background(), `
		SELECT user_id::text, display_name, coalesce(company, ''), coalesce(job_title, ''), coalesce(industry, ''),
		       ARRAY(SELECT x FROM unnest(interests) x WHERE x IS NOT NULL),
		       ARRAY(SELECT x FROM unnest(looking_for) x WHERE x IS NOT NULL),
		       ARRAY(SELECT x FROM unnest(offering) x WHERE x IS NOT NULL),
		       bio
		FROM all_events_members WHERE event_id = $1 AND NOT user_id = ANY($2::uuid[]) ORDER BY user_id`, eventID, exclude)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attendee.Profile, error) {
		var p attendee.Profile
		return p, r.Scan(&p.UserID, &p.DisplayName, &p.Company, &p.JobTitle, &p.Industry,
			&p.Interests, &p.LookingFor, &p.Offering, &p.Bio)
	})
	if err != nil {
		t.Fatal(err)
	}
	return matching.NewPool(profiles)
}

// fromScratchMismatches compares stored lists with a from-scratch top-N over
// the normalized pool without exclude, and returns a description per
// member whose list differs (members in skipViewers are not compared).
func fromScratchMismatches(t *testing.T, pool *pgxpool.Pool, eventID string, exclude, skipViewers []string) map[string]string {
	t.Helper()
	p := normalizedPool(t, pool, eventID, exclude)
	lists := storedLists(t, pool, eventID)
	wrong := map[string]string{}
	for i := 0; i < p.Len(); i++ {
		id := p.Profile(i).UserID
		if slices.Contains(skipViewers, id) {
			continue
		}
		want := p.TopN(i, topN)
		got := lists[id]
		same := len(got) == len(want)
		for k := 0; same && k < len(want); k++ {
			same = got[k].MatchedUserID == p.Profile(want[k].Other).UserID && got[k].Score == want[k].Score
		}
		if !same {
			wantIDs := make([]string, len(want))
			for k, w := range want {
				wantIDs[k] = fmt.Sprintf("%s %.4f", p.Profile(w.Other).UserID, w.Score)
			}
			wrong[id] = fmt.Sprintf("stored %v, from scratch %v", got, wantIDs)
		}
	}
	return wrong
}

// checkFromScratch fails the test for every list that differs from the
// from-scratch top-N of the normalized pool.
func checkFromScratch(t *testing.T, pool *pgxpool.Pool, eventID string, exclude, skipViewers []string) {
	t.Helper()
	wrong := fromScratchMismatches(t, pool, eventID, exclude, skipViewers)
	shown := 0
	for id, d := range wrong {
		if shown++; shown > 3 {
			break
		}
		t.Errorf("member %s: %s", id, d)
	}
	if len(wrong) > 0 {
		t.Errorf("%d lists differ from a full recompute", len(wrong))
	}
}

// ---------------------------------------------------------------------------
// Churn: the web app's INSERTs, UPDATEs and DELETEs at a steady rate.

// churnGenerator changes an event's members at a fixed rate: half profile
// updates (interests and bio), a quarter new members, a quarter deletions.
// Newcomers go to a newcomerTracker; they are updated or deleted only once
// they have their list, so every newcomer's latency is measured.
type churnGenerator struct {
	pool     *pgxpool.Pool
	eventID  string
	tracker  *newcomerTracker
	rng      *mrand.Rand // used under mu
	mu       sync.Mutex
	alive    []string           // members that may be updated or deleted
	floor    int                // never delete below this many alive members
	fresh    []attendee.Profile // profiles for newcomers, used in order
	edits    []attendee.Profile // profiles whose interests and bio updates copy
	next     int
	updates  atomic.Int64
	inserts  atomic.Int64
	deletes  atomic.Int64
	failures atomic.Int64
	lastErr  atomic.Value
	// writeLatency holds how long each web-app statement took; a statement
	// that waits on the engine's locks shows here.
	writeMu      sync.Mutex
	writeLatency []time.Duration
}

func newChurnGenerator(pool *pgxpool.Pool, eventID string, members []string, tracker *newcomerTracker, seed uint64, maxInserts int) *churnGenerator {
	g := &churnGenerator{
		pool:    pool,
		eventID: eventID,
		tracker: tracker,
		rng:     mrand.New(mrand.NewPCG(seed, 8)),
		alive:   slices.Clone(members),
		floor:   len(members) / 2,
		fresh:   demodata.Generate(int64(seed)+101, maxInserts+1),
		edits:   demodata.Generate(int64(seed)+202, 500),
	}
	tracker.onMatched = func(id string) {
		g.mu.Lock()
		g.alive = append(g.alive, id)
		g.mu.Unlock()
	}
	return g
}

// run changes members at rate per second until ctx ends or duration passes,
// with up to 8 statements in flight, and returns the achieved rate.
func (g *churnGenerator) run(ctx context.Context, rate float64, duration time.Duration) float64 {
	ops := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range ops {
				g.do(ctx, op)
			}
		}()
	}
	start := time.Now()
	sent := 0
	interval := time.Duration(float64(time.Second) / rate)
	for ctx.Err() == nil && time.Since(start) < duration {
		if wait := time.Until(start.Add(time.Duration(sent) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		g.mu.Lock()
		op := g.rng.IntN(4) // 0, 1: update; 2: insert; 3: delete
		g.mu.Unlock()
		select {
		case ops <- op:
			sent++
		case <-ctx.Done():
		}
	}
	close(ops)
	wg.Wait()
	return float64(sent) / time.Since(start).Seconds()
}

func (g *churnGenerator) do(ctx context.Context, op int) {
	var err error
	began := time.Now()
	switch op {
	case 0, 1:
		err = g.update(ctx)
	case 2:
		err = g.insert(ctx)
	case 3:
		err = g.delete(ctx)
	}
	g.writeMu.Lock()
	g.writeLatency = append(g.writeLatency, time.Since(began))
	g.writeMu.Unlock()
	if err != nil && ctx.Err() == nil {
		g.failures.Add(1)
		g.lastErr.Store(err.Error())
	}
}

func (g *churnGenerator) pickAlive(remove bool) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.alive) == 0 || remove && len(g.alive) <= g.floor {
		return "", false
	}
	i := g.rng.IntN(len(g.alive))
	id := g.alive[i]
	if remove {
		g.alive[i] = g.alive[len(g.alive)-1]
		g.alive = g.alive[:len(g.alive)-1]
	}
	return id, true
}

func (g *churnGenerator) update(ctx context.Context) error {
	id, ok := g.pickAlive(false)
	if !ok {
		return nil
	}
	g.mu.Lock()
	edit := g.edits[g.rng.IntN(len(g.edits))]
	g.mu.Unlock()
	_, err := g.pool.Exec(ctx, `
		UPDATE all_events_members SET interests = $3, bio = $4, updated_at = now()
		WHERE event_id = $1 AND user_id = $2`, g.eventID, id, edit.Interests, edit.Bio)
	if err == nil {
		g.updates.Add(1)
	}
	return err
}

func (g *churnGenerator) insert(ctx context.Context) error {
	g.mu.Lock()
	if g.next >= len(g.fresh) {
		g.mu.Unlock()
		return errors.New("churn generator ran out of newcomer profiles")
	}
	m := g.fresh[g.next]
	g.next++
	g.mu.Unlock()
	m.UserID = randomUUID()
	_, err := g.pool.Exec(ctx, `
		INSERT INTO all_events_members
		    (event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio)
		VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), nullif($6, ''), $7, $8, $9, $10)`,
		g.eventID, m.UserID, m.DisplayName, m.Company, m.JobTitle, m.Industry,
		nonNilTags(m.Interests), nonNilTags(m.LookingFor), nonNilTags(m.Offering), m.Bio)
	if err == nil {
		g.tracker.add(m.UserID, time.Now()) // the statement has committed
		g.inserts.Add(1)
	}
	return err
}

func (g *churnGenerator) delete(ctx context.Context) error {
	id, ok := g.pickAlive(true)
	if !ok {
		return nil
	}
	_, err := g.pool.Exec(ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, g.eventID, id)
	if err == nil {
		g.deletes.Add(1)
	}
	return err
}

func (g *churnGenerator) summary() string {
	g.writeMu.Lock()
	lat := slices.Clone(g.writeLatency)
	g.writeMu.Unlock()
	slices.Sort(lat)
	s := fmt.Sprintf("%d updates, %d inserts, %d deletes, %d failed; web-app statement p95 %s, max %s",
		g.updates.Load(), g.inserts.Load(), g.deletes.Load(), g.failures.Load(),
		percentile(lat, 95).Round(time.Millisecond), percentile(lat, 100).Round(time.Millisecond))
	if e, ok := g.lastErr.Load().(string); ok {
		s += "; last error: " + e
	}
	return s
}

func nonNilTags(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ---------------------------------------------------------------------------
// Newcomer latency: from the INSERT's commit to a full list.

// newcomerTracker polls the lists of newcomers until each has TOP_N
// matches, and records how long that took after its INSERT committed.
type newcomerTracker struct {
	mu        sync.Mutex
	pending   map[string]time.Time
	latencies []time.Duration
	onMatched func(id string)
}

func newNewcomerTracker() *newcomerTracker {
	return &newcomerTracker{pending: map[string]time.Time{}}
}

func (n *newcomerTracker) add(id string, committed time.Time) {
	n.mu.Lock()
	n.pending[id] = committed
	n.mu.Unlock()
}

// run polls every 50 ms until ctx ends.
func (n *newcomerTracker) run(ctx context.Context, pool *pgxpool.Pool, eventID string) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.mu.Lock()
		ids := make([]string, 0, len(n.pending))
		for id := range n.pending {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		rows, err := pool.Query(ctx, `
			SELECT user_id::text FROM matches WHERE event_id = $1 AND user_id = ANY($2::uuid[])
			GROUP BY user_id HAVING count(*) >= $3`, eventID, ids, topN)
		if err != nil {
			continue
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[string])
		seen := time.Now()
		if err != nil {
			continue
		}
		for _, id := range done {
			n.mu.Lock()
			at, ok := n.pending[id]
			delete(n.pending, id)
			if ok {
				n.latencies = append(n.latencies, seen.Sub(at))
			}
			n.mu.Unlock()
			if ok && n.onMatched != nil {
				n.onMatched(id)
			}
		}
	}
}

// stats returns the latencies seen so far (sorted) and how many newcomers
// are still waiting.
func (n *newcomerTracker) stats() (sorted []time.Duration, waiting int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sorted = slices.Clone(n.latencies)
	slices.Sort(sorted)
	return sorted, len(n.pending)
}

// percentile of sorted durations (nearest rank); 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// ---------------------------------------------------------------------------
// Progress: queue depth and batch commits over time.

type depthSample struct {
	at    time.Time
	depth int
}

// progressSampler records the event's queue depth and every batch commit
// (matchmaking_batches.committed_at) once a second.
type progressSampler struct {
	mu      sync.Mutex
	depths  []depthSample
	commits []time.Time
}

func (s *progressSampler) run(ctx context.Context, pool *pgxpool.Pool, eventID string) {
	last := time.Time{}
	for {
		var depth int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID).Scan(&depth); err == nil {
			s.mu.Lock()
			s.depths = append(s.depths, depthSample{time.Now(), depth})
			s.mu.Unlock()
		}
		rows, err := pool.Query(ctx, `
			SELECT committed_at FROM matchmaking_batches
			WHERE event_id = $1 AND committed_at > $2 ORDER BY committed_at`, eventID, last)
		if err == nil {
			if ts, err := pgx.CollectRows(rows, pgx.RowTo[time.Time]); err == nil && len(ts) > 0 {
				last = ts[len(ts)-1]
				s.mu.Lock()
				s.commits = append(s.commits, ts...)
				s.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// longestStretchWithoutCommit within [from, to].
func (s *progressSampler) longestStretchWithoutCommit(from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, longest := from, time.Duration(0)
	for _, c := range s.commits {
		if c.Before(from) || c.After(to) {
			continue
		}
		longest = max(longest, c.Sub(prev))
		prev = c
	}
	return max(longest, to.Sub(prev))
}

func (s *progressSampler) commitsBetween(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.commits {
		if !c.Before(from) && !c.After(to) {
			n++
		}
	}
	return n
}

// depthStats returns the largest depth and the medians of the first and
// last thirds of the samples within [from, to].
func (s *progressSampler) depthStats(from, to time.Time) (maxDepth int, firstThird, lastThird float64) {
	s.mu.Lock()
	var d []float64
	for _, x := range s.depths {
		if !x.at.Before(from) && !x.at.After(to) {
			d = append(d, float64(x.depth))
			maxDepth = max(maxDepth, x.depth)
		}
	}
	s.mu.Unlock()
	first, last := thirds(d)
	return maxDepth, first, last
}

// thirds returns the medians of the first and last third of xs.
func thirds(xs []float64) (first, last float64) {
	if len(xs) < 3 {
		return median(xs), median(xs)
	}
	n := len(xs) / 3
	return median(xs[:n]), median(xs[len(xs)-n:])
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---------------------------------------------------------------------------
// Processes.

// startWorkerProc starts bin/worker with the env's settings, stopped when t
// ends; unlike env.startWorker it may be called from any test (a run of a
// multi-run scenario restarts the worker of its parent).
func startWorkerProc(t *testing.T, e *env) *workerProcess {
	t.Helper()
	w := &workerProcess{cmd: exec.Command(suite.workerBin), logs: &syncBuffer{}, done: make(chan struct{})}
	w.cmd.Env = e.environ()
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGCONT) // a stopped worker cannot act on SIGTERM
		w.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("worker %d log (tail):\n%s", w.cmd.Process.Pid, tail(w.logs.String(), 60))
		}
	})
	return w
}

func (w *workerProcess) alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// rssKB reads a process's resident set size from /proc.
func rssKB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, errors.New("no VmRSS line")
}

// metricValue scrapes one unlabelled series from the worker's /metrics.
func metricValue(w *workerProcess, name string) (float64, error) {
	m := metricsURL.FindStringSubmatch(w.logs.String())
	if m == nil {
		return 0, errors.New("the worker did not log its metrics address")
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(m[1])
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s is not exported at %s", name, m[1])
}

// postgresClientPorts lists the local ports of pid's TCP connections to
// port 5432, which pg_stat_activity shows as client_port.
func postgresClientPorts(pid int) ([]int, error) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] || !strings.HasSuffix(f[2], ":1538") { // 0x1538 = 5432
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				ports = append(ports, int(p))
			}
		}
	}
	return ports, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// databaseName is the database part of a test database URL.
func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// tryInt runs a query returning one integer; -1 on any error (the
// scenarios that restart or cut PostgreSQL poll through the outage).
func tryInt(pool *pgxpool.Pool, q string, args ...any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return -1
	}
	return n
}

// committedBatches counts the event's committed batches (-1 on error).
func committedBatches(pool *pgxpool.Pool, eventID string) int {
	return tryInt(pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND committed_at IS NOT NULL`, eventID)
}
