package listener

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// TestListeningFollowsTheConnection: Listening, which the worker's
// readiness reports, is true exactly while a connection holds LISTEN.
func TestListeningFollowsTheConnection(t *testing.T) {
	d := testenv.NewDB(t)
	l := &Listener{
		Pool:       d.Pool,
		Store:      store.New(d.Pool),
		Wake:       func(context.Context, string) error { return nil },
		Debounce:   10 * time.Millisecond,
		SafetyPoll: time.Hour,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
		// Long enough for the test to see the gap between a lost
		// connection and the next.
		MinBackoff: 500 * time.Millisecond,
	}
	if l.Listening() {
		t.Fatal("Listening before Run")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	eventually(t, 5*time.Second, "Listening once connected", l.Listening)
	d.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()`)
	eventually(t, 2*time.Second, "not Listening once the connection is cut", func() bool { return !l.Listening() })
	eventually(t, 5*time.Second, "Listening again after reconnecting", l.Listening)

	cancel()
	wg.Wait()
	if l.Listening() {
		t.Error("Listening after Run returned")
	}
}
