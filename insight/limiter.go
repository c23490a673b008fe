package insight

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limiter spaces requests evenly: at most one every minute/rpm, shared by
// all goroutines using the client. It allows no burst, which keeps it
// simple and never over the provider's per-minute limit.
type limiter struct {
	interval time.Duration

	mu   sync.Mutex
	next time.Time // earliest time the next request may start
	now  func() time.Time
}

func newLimiter(rpm int) *limiter {
	if rpm <= 0 {
		return nil
	}
	return &limiter{interval: time.Minute / time.Duration(rpm), now: time.Now}
}

// wait blocks until the caller's slot. A slot past ctx's deadline is not
// taken: wait returns an error wrapping context.DeadlineExceeded at once. A
// slot abandoned because ctx ended stays spent.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	delay, err := l.reserve(ctx)
	if err != nil {
		return err
	}
	return sleep(ctx, delay)
}

// reserve takes the caller's slot and returns how long to wait for it.
func (l *limiter) reserve(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	slot := l.next
	if slot.Before(now) {
		slot = now
	}
	if dl, ok := ctx.Deadline(); ok && slot.After(dl) {
		return 0, fmt.Errorf("insight: next request slot is %v away, past the deadline: %w",
			slot.Sub(now).Round(time.Millisecond), context.DeadlineExceeded)
	}
	l.next = slot.Add(l.interval)
	return slot.Sub(now), nil
}

// sleep waits d or until ctx ends, returning ctx.Err() in the latter case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
