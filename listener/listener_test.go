package listener

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventmatch/matchmaker/internal/deploy"
	"github.com/eventmatch/matchmaker/internal/metrics"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

func TestBackoffDoublesAndResets(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	b.reset()
	if d := b.next(); d != 100*time.Millisecond {
		t.Fatalf("after reset: %s, want 100ms", d)
	}

	d := newBackoff(0, 0)
	if d.next() != DefaultMinBackoff || d.max != DefaultMaxBackoff {
		t.Fatalf("zero values: min %s max %s, want the defaults", d.min, d.max)
	}
}

// TestEditPickedUpQuicklyAfterConnectionLosses kills the listener's backend
// three times and makes an edit while the third connection is down: the
// edit must wake its event within a second. Without the reset the third
// reconnect would wait 4×MinBackoff (1.2 s here).
func TestEditPickedUpQuicklyAfterConnectionLosses(t *testing.T) {
	d := testenv.NewDB(t)
	const event = "e0000000-0000-4000-8000-000000000001"
	d.Exec(`INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev-1', 'Event 1', true)`, event)

	type wake struct {
		id string
		at time.Time
	}
	wakes := make(chan wake, 100)
	l := &Listener{
		Pool:  d.Pool,
		Store: store.New(d.Pool),
		Wake: func(_ context.Context, id string) error {
			wakes <- wake{id, time.Now()}
			return nil
		},
		Debounce:   10 * time.Millisecond,
		SafetyPoll: time.Hour, // only the reconnect's catch-up may find the edit
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
		MinBackoff: 300 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	defer wg.Wait()
	defer cancel()

	// listenerPID waits until a backend other than old is LISTENing on the
	// test's database.
	listenerPID := func(old int64) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var pid int64
			err := d.Pool.QueryRow(d.Ctx, `SELECT coalesce(max(pid), 0) FROM pg_stat_activity
				WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()`).Scan(&pid)
			if err != nil {
				t.Fatalf("find the listener's backend: %v", err)
			}
			if pid != 0 && pid != old {
				return pid
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no listener connection other than pid %d after 10s", old)
		return 0
	}
	kill := func(pid int64) {
		t.Helper()
		var ok bool
		if err := d.Pool.QueryRow(d.Ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("could not terminate backend %d: %v", pid, err)
		}
	}

	start := time.Now()
	pid := listenerPID(0)
	for loss := 1; loss <= 3; loss++ {
		kill(pid)
		if loss < 3 {
			lost := time.Now()
			pid = listenerPID(pid)
			t.Logf("connection loss %d: reconnected after %s", loss, time.Since(lost).Round(time.Millisecond))
		}
	}

	// The edit: a newcomer, enqueued (and NOTIFYed to nobody) by the
	// member trigger while the listener is reconnecting.
	d.Exec(`INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ($1, $2, 'M1')`, event, testenv.UID(1))
	edited := time.Now()
	select {
	case w := <-wakes:
		if w.id != event {
			t.Fatalf("woke %s, want %s", w.id, event)
		}
		took := w.at.Sub(edited)
		t.Logf("edit after the third connection loss picked up in %s", took.Round(time.Millisecond))
		if took > time.Second {
			t.Fatalf("edit picked up after %s, want under 1s", took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("edit not picked up within 3s")
	}
	listenerPID(pid) // and the listener is back
	t.Logf("whole test: %s", time.Since(start).Round(time.Millisecond))
}

// logBuffer collects a listener's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// receiving reads matchmaking_listener_receiving from reg.
func receiving(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "matchmaking_listener_receiving" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("matchmaking_listener_receiving is not registered")
	return 0
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const deafLine = "queue listener receives no notifications"

type probeRig struct {
	l     *Listener
	reg   *prometheus.Registry
	logs  *logBuffer
	wakes chan string
}

// startListener runs l (Wake, Logger and Metrics filled in) until the test
// ends.
func startListener(t *testing.T, l *Listener) *probeRig {
	t.Helper()
	r := &probeRig{l: l, reg: prometheus.NewRegistry(), logs: &logBuffer{}, wakes: make(chan string, 100)}
	app, err := metrics.NewApp(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	l.Metrics = app
	l.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(r.logs, t.Output()), nil))
	l.Wake = func(_ context.Context, id string) error { r.wakes <- id; return nil }
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// TestProbeShowsListenWorks: on a direct connection the probe arrives, the
// gauge says so, and nothing is logged about it.
func TestProbeShowsListenWorks(t *testing.T) {
	d := testenv.NewDB(t)
	r := startListener(t, &Listener{Pool: d.Pool, Store: store.New(d.Pool), Debounce: 10 * time.Millisecond, SafetyPoll: time.Hour})
	start := time.Now()
	eventually(t, 3*time.Second, "the gauge to say the listener receives", func() bool { return receiving(t, r.reg) == 1 })
	t.Logf("probe received after %s", time.Since(start).Round(time.Millisecond))
	if r.l.pollInterval() != time.Hour {
		t.Errorf("poll interval %s, want SAFETY_POLL", r.l.pollInterval())
	}
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(r.logs.String(), deafLine) {
		t.Errorf("a working listener logged:\n%s", r.logs)
	}
}

// TestDeafListenerThroughTransactionPooler: LISTEN through pgbouncer in
// transaction mode "works" and receives nothing. The listener says so in
// one line and the gauge, and polls every DeafPoll, so an edit is picked
// up in a fraction of a second although SAFETY_POLL is an hour.
func TestDeafListenerThroughTransactionPooler(t *testing.T) {
	d := testenv.NewDB(t)
	admin, err := pgx.ParseConfig(testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	bouncer := deploy.StartPgBouncer(t, admin.Host, int(admin.Port), 2, admin.User)
	dbCfg, err := pgx.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := store.ConnectEnv(t.Context(), "DATABASE_LISTEN_URL", bouncer.URL(admin.User, dbCfg.Database), "listener-test")
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Close()
	const event = "e0000000-0000-4000-8000-000000000001"
	d.Exec(`INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev-1', 'Event 1', true)`, event)

	r := startListener(t, &Listener{
		Pool: pooled, Store: store.New(d.Pool),
		Debounce: 10 * time.Millisecond, SafetyPoll: time.Hour,
		ProbeTimeout: 500 * time.Millisecond, DeafPoll: 300 * time.Millisecond,
	})
	start := time.Now()
	eventually(t, 3*time.Second, "the listener to say it receives nothing", func() bool { return strings.Contains(r.logs.String(), deafLine) })
	t.Logf("deafness reported after %s", time.Since(start).Round(time.Millisecond))
	if g := receiving(t, r.reg); g != 0 {
		t.Errorf("gauge %v, want 0", g)
	}
	if !strings.Contains(r.logs.String(), "DATABASE_LISTEN_URL") || !strings.Contains(r.logs.String(), "transaction-mode pooler") {
		t.Errorf("the line does not name the cause and the fix:\n%s", r.logs)
	}

	d.Exec(`INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ($1, $2, 'M1')`, event, testenv.UID(1))
	edited := time.Now()
	select {
	case id := <-r.wakes:
		if id != event {
			t.Fatalf("woke %s, want %s", id, event)
		}
		took := time.Since(edited)
		t.Logf("edit picked up by the shortened poll in %s", took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("edit picked up after %s, want within the deaf poll (300ms) and the debounce", took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("edit not picked up within 3s: the poll was not shortened")
	}
	if n := strings.Count(r.logs.String(), deafLine); n != 1 {
		t.Errorf("the deafness was logged %d times, want once:\n%s", n, r.logs)
	}
}

// TestLateProbeRestoresNormalPolling: a probe that arrives after the
// timeout first makes the listener report deafness, then lifts it: the
// gauge goes to 1 and the poll back to SAFETY_POLL.
func TestLateProbeRestoresNormalPolling(t *testing.T) {
	d := testenv.NewDB(t)
	l := &Listener{
		Pool: d.Pool, Store: store.New(d.Pool),
		Debounce: 10 * time.Millisecond, SafetyPoll: time.Hour,
		ProbeTimeout: 200 * time.Millisecond, DeafPoll: 100 * time.Millisecond,
	}
	l.sendProbe = func(ctx context.Context, channel string) error {
		time.Sleep(700 * time.Millisecond)
		_, err := d.Pool.Exec(ctx, `SELECT pg_notify($1, 'probe')`, channel)
		return err
	}
	r := startListener(t, l)
	eventually(t, 2*time.Second, "deafness reported", func() bool { return strings.Contains(r.logs.String(), deafLine) })
	if l.pollInterval() != 100*time.Millisecond {
		t.Errorf("deaf poll interval %s, want 100ms", l.pollInterval())
	}
	eventually(t, 3*time.Second, "the late probe to lift it", func() bool { return receiving(t, r.reg) == 1 })
	if !strings.Contains(r.logs.String(), "receives notifications again") {
		t.Errorf("recovery not logged:\n%s", r.logs)
	}
	if l.pollInterval() != time.Hour {
		t.Errorf("poll interval after recovery %s, want SAFETY_POLL", l.pollInterval())
	}
}
