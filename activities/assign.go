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
// is kept in the event's cached view for whoever comes after.
//
// Members may join or edit while it runs, and then the retry's pool is a
// newer one. A pool derived from the running computation's
// (matching.Pool.DerivesFrom) does not cancel it: the new assignment waits
// for it and repairs its result, so a steady trickle of changes cannot keep
// a large event from ever being matched. Any other pool of the event (a
// whole read) cancels the running one, whose result could serve nobody.
// A worker keeps at most one such chain per event.

// cappedResult is matching.Pool.Assign's result.
type cappedResult struct {
	state    *matching.CapState
	repaired bool
	stats    matching.CapStats
}

// assignment is one detached computation: of pool's assignment repaired
// from prev, or from after's result when after is set.
type assignment struct {
	pool              *matching.Pool
	prev              *matching.CapState
	n, maxAppearances int
	// after is the computation of an older pool of the event this one
	// repairs, once it is done; nil when there is none.
	after  *assignment
	cancel context.CancelFunc
	done   chan struct{} // closed once result and err are set
	result cappedResult
	err    error
}

// serves reports whether a computes what view asks for.
func (a *assignment) serves(view *eventView, n, maxAppearances int) bool {
	return a.pool == view.pool && a.prev == view.capped && a.n == n && a.maxAppearances == maxAppearances
}

// cancelChain cancels a and the computations it waits for.
func (a *assignment) cancelChain() {
	for ; a != nil; a = a.after {
		a.cancel()
	}
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
	if a == nil || !a.serves(view, n, maxAppearances) {
		running := a
		detached, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a = &assignment{pool: view.pool, prev: view.capped, n: n, maxAppearances: maxAppearances, cancel: cancel, done: make(chan struct{})}
		switch {
		case running == nil:
		case running.n == n && running.maxAppearances == maxAppearances && view.pool.DerivesFrom(running.pool):
			a.after = running
		default:
			running.cancelChain()
		}
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
	prev := a.prev
	if a.after != nil {
		select {
		case <-a.after.done:
			if carried := a.after.result.state.CarriedTo(a.after.pool, a.pool); a.after.err == nil && carried != nil {
				prev = carried
			}
		case <-ctx.Done():
		}
		s.mu.Lock()
		a.after = nil // done with it: let its result go
		s.mu.Unlock()
	}
	a.result, a.err = assignRecovered(ctx, a, prev)
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
func assignRecovered(ctx context.Context, a *assignment, prev *matching.CapState) (result cappedResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errAssignmentPanicked, r, debug.Stack())
		}
	}()
	state, repaired, stats, err := a.pool.Assign(ctx, prev, a.n, a.maxAppearances)
	return cappedResult{state: state, repaired: repaired, stats: stats}, err
}
