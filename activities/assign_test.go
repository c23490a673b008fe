package activities

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// timedOut asks s for view's assignment with an attempt that times out at
// once, and returns the computation that attempt leaves running. The
// events here are thousands of members, whose assignment takes far longer
// than the attempt's millisecond.
func timedOut(t *testing.T, s *assignments, view *eventView, events *eventCache) *assignment {
	t.Helper()
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := s.assign(short, "ev", view, 3, 6, events); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an attempt that timed out got %v, want its deadline", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	running := s.byEvent["ev"]
	if running == nil {
		t.Fatal("the attempt's timeout took the computation with it")
	}
	return running
}

// An attempt that ends before the capped assignment does leaves it
// running; the retry waits for that computation rather than starting
// another, and the result lands in the event's cached view.
func TestCappedAssignmentOutlivesTheAttempt(t *testing.T) {
	t.Parallel()
	pool := matching.NewPool(demodata.Generate(5, 3000))
	view := &eventView{membersVersion: 1, listsVersion: 1, pool: pool}
	var events eventCache
	events.put("ev", view)
	var s assignments
	running := timedOut(t, &s, view, &events)

	got, err := s.assign(context.Background(), "ev", view, 3, 6, &events)
	if err != nil {
		t.Fatal(err)
	}
	<-running.done
	if running.err != nil || got.state != running.result.state {
		t.Fatalf("the retry did not take the first computation's result (its error: %v)", running.err)
	}
	cached := events.get("ev")
	if cached.pool != pool || cached.capped != got.state {
		t.Fatal("the assignment is not in the event's cached view")
	}
	want, _, _, err := pool.Assign(context.Background(), nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got.state.Lists(), want.Lists(), slices.Equal) {
		t.Fatal("the detached assignment differs from one computed in place")
	}

	// With the assignment in the view, the next batch repairs it, which
	// changes nothing.
	again, err := s.assign(context.Background(), "ev", cached, 3, 6, &events)
	if err != nil {
		t.Fatal(err)
	}
	if !again.repaired || again.stats.Scans != 0 {
		t.Fatalf("the next batch repaired=%v with %d scans, want a repair with none", again.repaired, again.stats.Scans)
	}
}

// Asking for the assignment of another pool of the event cancels the one
// running, whose result could serve nobody.
func TestCappedAssignmentOfAnotherPoolCancelsTheRunningOne(t *testing.T) {
	t.Parallel()
	old := &eventView{membersVersion: 1, listsVersion: 1, pool: matching.NewPool(demodata.Generate(5, 5000))}
	next := &eventView{membersVersion: 2, listsVersion: 1, pool: matching.NewPool(demodata.Generate(6, 200))}
	var events eventCache
	var s assignments
	running := timedOut(t, &s, old, &events)
	if _, err := s.assign(context.Background(), "ev", next, 3, 6, &events); err != nil {
		t.Fatal(err)
	}
	<-running.done
	if !errors.Is(running.err, context.Canceled) {
		t.Fatalf("the old pool's assignment ended with %v, want cancelled", running.err)
	}
	if cached := events.get("ev"); cached == nil || cached.pool != next.pool {
		t.Fatal("the new pool's assignment is not cached")
	}
}

// A panic in the assignment fails the attempt that waits for it instead of
// the worker: it runs outside the activity's goroutine, where the SDK's own
// recovery does not reach.
func TestCappedAssignmentPanicIsAnError(t *testing.T) {
	t.Parallel()
	view := &eventView{membersVersion: 1, listsVersion: 1} // no pool: Assign dereferences nil
	var events eventCache
	var s assignments
	if _, err := s.assign(context.Background(), "ev", view, 3, 6, &events); !errors.Is(err, errAssignmentPanicked) {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	if events.get("ev") != nil {
		t.Fatal("a failed assignment was cached")
	}
}

// Members who join while a long assignment runs give the retry a newer
// pool; the running computation goes on, and the new assignment repairs
// its result rather than starting over.
func TestCappedAssignmentOfADerivedPoolBuildsOnTheRunningOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := demodata.Generate(5, 3010)
	base := &eventView{membersVersion: 1, listsVersion: 1, pool: matching.NewPool(gen[:3000])}
	var events eventCache
	var s assignments
	running := timedOut(t, &s, base, &events)

	joined, err := base.advance(ctx, store.Snapshot{Version: 1, MembersVersion: 2, Members: gen[3000:3010]})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.assign(ctx, "ev", joined, 3, 6, &events)
	if err != nil {
		t.Fatal(err)
	}
	<-running.done
	if running.err != nil {
		t.Fatalf("the older pool's assignment ended with %v; a derived pool must not cancel it", running.err)
	}
	if !got.repaired {
		t.Fatal("the derived pool's assignment was made from scratch, not repaired from the running one")
	}
	want, _, _, err := joined.pool.Assign(ctx, nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got.state.Lists(), want.Lists(), slices.Equal) {
		t.Fatal("the repaired assignment differs from one from scratch")
	}
}
