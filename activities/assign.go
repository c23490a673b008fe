package activities

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/eventmatch/matchmaker/matching"
)

// A capped assignment is made for the whole event, and from scratch after
// a whole read: at 50,000 members that takes longer than one attempt of
// the score step may run (MAX_RUNTIME_MS, 45 s by default). Were the work
// tied to the attempt, every attempt would be cancelled at its timeout and
// its retry would start again from nothing, and the event would never be
// matched. So the assignment runs detached from the attempt that asked for
// it: an attempt that times out leaves it running, a retry on this worker
// that finds the same pool waits for the same computation, and the result
// is kept in the event's cached view for whoever comes after. A worker
// computes at most one assignment per event at a time; asking for another
// (the event changed meanwhile) cancels the running one, whose result
// could serve nobody.

// cappedResult is matching.Pool.Assign's result.
type cappedResult struct {
	state    *matching.CapState
	repaired bool
	stats    matching.CapStats
}

// assignment is one detached computation: of pool's assignment repaired
// from prev.
type assignment struct {
	pool              *matching.Pool
	prev              *matching.CapState
	n, maxAppearances int
	cancel            context.CancelFunc
	done              chan struct{} // closed once result and err are set
	result            cappedResult
	err               error
}

// assignments are the detached computations running on this worker, by
// event.
type assignments struct {
	mu      sync.Mutex
	byEvent map[string]*assignment
}

// assign returns the capped assignment of view's pool, repaired from
// view.capped (matching.Pool.Assign). When ctx ends first it returns ctx's
// error and the computation goes on: its result is put in events as view
// with the assignment, and a caller meanwhile asking for the same pool and
// starting point waits for it rather than starting another.
func (s *assignments) assign(ctx context.Context, eventID string, view *eventView, n, maxAppearances int, events *eventCache) (cappedResult, error) {
	s.mu.Lock()
	a := s.byEvent[eventID]
	if a == nil || a.pool != view.pool || a.prev != view.capped || a.n != n || a.maxAppearances != maxAppearances {
		if a != nil {
			a.cancel()
		}
		detached, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a = &assignment{pool: view.pool, prev: view.capped, n: n, maxAppearances: maxAppearances, cancel: cancel, done: make(chan struct{})}
		if s.byEvent == nil {
			s.byEvent = map[string]*assignment{}
		}
		s.byEvent[eventID] = a
		go s.run(detached, eventID, view, a, events)
	}
	s.mu.Unlock()
	select {
	case <-a.done:
		return a.result, a.err
	case <-ctx.Done():
		return cappedResult{}, ctx.Err()
	}
}

func (s *assignments) run(ctx context.Context, eventID string, view *eventView, a *assignment, events *eventCache) {
	defer a.cancel()
	a.result, a.err = assignRecovered(ctx, a)
	if a.err == nil {
		// The assignment is a function of the pool alone: it holds for
		// this view whatever becomes of the batch that asked for it.
		events.put(eventID, view.withCapped(a.result.state))
	}
	s.mu.Lock()
	if s.byEvent[eventID] == a {
		delete(s.byEvent, eventID)
	}
	s.mu.Unlock()
	close(a.done)
}

// errAssignmentPanicked: the capped assignment panicked. The attempt
// fails with it and Temporal retries the step.
var errAssignmentPanicked = errors.New("capped assignment panicked")

// assignRecovered is a's computation, with a panic turned into its error:
// run's goroutine is not an activity's, so the SDK would not recover it,
// and one bad event would take the worker and every other event down.
func assignRecovered(ctx context.Context, a *assignment) (result cappedResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errAssignmentPanicked, r, debug.Stack())
		}
	}()
	state, repaired, stats, err := a.pool.Assign(ctx, a.prev, a.n, a.maxAppearances)
	return cappedResult{state: state, repaired: repaired, stats: stats}, err
}
