package activities

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

// TestSoloFirstCallOnlyWhenTheEndpointIsInDoubt: a round's first call goes
// alone when the endpoint has not answered lately (a worker's first round,
// or after a call failed the way a dead endpoint does), so a bad key or a
// dead endpoint costs one call; a round right after answers starts all its
// calls at once, since the solo call would cost a model latency per round.
func TestSoloFirstCallOnlyWhenTheEndpointIsInDoubt(t *testing.T) {
	t.Parallel()
	type span struct{ start, end time.Time }
	var (
		mu       sync.Mutex
		spans    []span
		down     bool
		inFlight int
	)
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		start := time.Now()
		mu.Lock()
		inFlight++
		mu.Unlock()
		// A call waits for another to be in flight with it, for up to
		// 300 ms, then answers 30 ms later: calls started at once then
		// overlap even when their goroutines start late (a fixed 30 ms
		// was not enough under the race detector on a loaded machine),
		// and a call that goes alone ends before the next begins.
		for deadline := start.Add(300 * time.Millisecond); time.Now().Before(deadline); {
			mu.Lock()
			others := inFlight > 1
			mu.Unlock()
			if others {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		inFlight--
		spans = append(spans, span{start, time.Now()})
		if down {
			return fakeopenai.Error(503, "upstream down")
		}
		return fakeopenai.Echo(call, req)
	})
	client, err := insight.New(insight.Config{APIKey: testAPIKey, Model: "gpt-4o-mini", BaseURL: fake.URL(),
		RequestTimeout: 2 * time.Second, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	const concurrency = 4
	w := &AIWriter{Client: client, Model: "gpt-4o-mini", Concurrency: concurrency}
	jobs := func(k int) []*pairJob {
		out := make([]*pairJob, k)
		for i := range out {
			out[i] = &pairJob{first: insight.Profile{Name: "Ada Lovelace"}, second: insight.Profile{Name: "Alan Turing"}}
		}
		return out
	}
	// round runs one round of k calls and returns the spans of its calls,
	// in the order the server finished them, and whether it stopped.
	round := func(k int) ([]span, bool) {
		mu.Lock()
		before := len(spans)
		mu.Unlock()
		stopped := w.callModel(context.Background(), jobs(k))
		mu.Lock()
		defer mu.Unlock()
		return append([]span(nil), spans[before:]...), stopped
	}
	// firstAlone: the round's first call ended before any other began.
	firstAlone := func(s []span) bool {
		if len(s) == 0 {
			return false
		}
		first := s[0]
		for _, o := range s {
			if o.start.Before(first.start) {
				first = o
			}
		}
		for _, o := range s {
			if o != first && o.start.Before(first.end) {
				return false
			}
		}
		return true
	}

	if s, _ := round(8); len(s) != 8 || !firstAlone(s) {
		t.Fatalf("a worker's first round: %d calls, first alone %v; want 8, alone", len(s), firstAlone(s))
	}
	if s, _ := round(8); len(s) != 8 || firstAlone(s) {
		t.Fatalf("a round right after answers: %d calls, first alone %v; want 8, all at once", len(s), firstAlone(s))
	}
	mu.Lock()
	down = true
	mu.Unlock()
	// The endpoint died after answering: the round has up to concurrency
	// calls in flight when the first failure stops it.
	if s, stopped := round(8); !stopped || len(s) > concurrency {
		t.Fatalf("the round that finds the endpoint dead: %d calls, stopped %v; want at most %d, stopped", len(s), stopped, concurrency)
	}
	// After that failure, rounds probe alone again: one call each.
	for range 2 {
		if s, stopped := round(8); !stopped || len(s) != 1 {
			t.Fatalf("a round after the endpoint failed: %d calls, stopped %v; want one, stopped", len(s), stopped)
		}
	}
}
