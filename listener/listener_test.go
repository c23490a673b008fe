package listener

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

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
