package listener

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// A lone notification wakes its event at once; a burst within the window
// adds one trailing wake-up, and another event is not held up by the first.
func TestWakeAtOnceThenOncePerWindow(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	var mu sync.Mutex
	wakes := map[string][]time.Duration{}
	start := time.Now()
	l := &Listener{
		Debounce:   window,
		SafetyPoll: time.Hour,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		pollChange: make(chan struct{}),
		Wake: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			wakes[id] = append(wakes[id], time.Since(start))
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan string)
	go l.dispatchLoop(ctx, in)

	in <- "a"
	for range 20 {
		in <- "a"
	}
	time.Sleep(window / 3)
	in <- "b"
	time.Sleep(3 * window)

	mu.Lock()
	defer mu.Unlock()
	if got := wakes["a"]; len(got) != 2 || got[0] > window/3 || got[1] < window {
		t.Errorf("event a woken at %v; want at once, then once after the %s window", got, window)
	}
	if got := wakes["b"]; len(got) != 1 || got[0] > window/3+window/3 {
		t.Errorf("event b woken at %v; want once, at once", got)
	}
}
