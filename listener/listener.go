// Package listener wakes event workflows when their queue gets rows. It
// replaces the seed's pg_cron schedule: a LISTEN on the queue trigger's
// channel gives sub-second pickup, and a slow safety poll catches rows that
// arrived while no worker was listening.
package listener

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/store"
)

// Channel is the NOTIFY channel of the matchmaking_queue trigger.
const Channel = "matchmaking_queue"

// WakeFunc starts or signals the workflow of an event.
type WakeFunc func(ctx context.Context, eventID string) error

// Listener turns queue notifications into debounced wake-ups.
type Listener struct {
	Pool       *pgxpool.Pool
	Store      *store.Store
	Wake       WakeFunc
	Debounce   time.Duration
	SafetyPoll time.Duration
	Logger     *slog.Logger
	// MinBackoff is the wait before reconnecting after a lost connection;
	// it doubles while reconnecting keeps failing, up to MaxBackoff, and
	// goes back to MinBackoff once a connection has LISTENed and caught
	// up. Zero means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Reconnect delays when the Listener sets none.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// Run listens until ctx is cancelled. Connection losses are retried; only
// ctx ends it.
func (l *Listener) Run(ctx context.Context) error {
	notifications := make(chan string, 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.listenLoop(ctx, notifications) }()
	go func() { defer wg.Done(); l.dispatchLoop(ctx, notifications) }()
	wg.Wait()
	return ctx.Err()
}

func (l *Listener) listenLoop(ctx context.Context, out chan<- string) {
	b := newBackoff(l.MinBackoff, l.MaxBackoff)
	for ctx.Err() == nil {
		healthy, err := l.listenOnce(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			// Only failures in a row grow the delay: after a working
			// connection, a loss (a restart, a killed backend, an idle
			// timeout in a proxy) is retried quickly again.
			b.reset()
		}
		delay := b.next()
		l.Logger.Warn("queue listener lost its connection; retrying", "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// backoff is the reconnect delay: doubling from min to max, reset by a
// healthy connection.
type backoff struct{ min, max, cur time.Duration }

func newBackoff(lo, hi time.Duration) *backoff {
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	hi = max(hi, lo)
	return &backoff{min: lo, max: hi, cur: lo}
}

// next returns the delay to wait now and doubles the following one.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d
}

func (b *backoff) reset() { b.cur = b.min }

// listenOnce holds one LISTEN connection until it fails. healthy reports
// whether it worked: it LISTENed and then caught up with the queue or
// received a notification.
func (l *Listener) listenOnce(ctx context.Context, out chan<- string) (healthy bool, err error) {
	pooled, err := l.Pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	// A connection that has LISTENed must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	// Rows enqueued before the LISTEN took effect would otherwise wait for
	// the safety poll.
	healthy = l.pollOnce(ctx, out)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return healthy, fmt.Errorf("wait for notification: %w", err)
		}
		healthy = true
		select {
		case out <- n.Payload:
		default:
			// The dispatcher is behind; the safety poll picks the event up.
		}
	}
}

// pollOnce sends the events that have claimable work to out, and reports
// whether it could look.
func (l *Listener) pollOnce(ctx context.Context, out chan<- string) bool {
	ids, err := l.Store.EventsWithClaimableWork(ctx)
	if err != nil {
		l.Logger.Warn("safety poll failed", "error", err)
		return false
	}
	for _, id := range ids {
		select {
		case out <- id:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// dispatchLoop collects event IDs for one debounce interval, then wakes each
// distinct event once.
func (l *Listener) dispatchLoop(ctx context.Context, in chan string) {
	poll := time.NewTicker(l.SafetyPoll)
	defer poll.Stop()
	pending := map[string]bool{}
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-in:
			pending[id] = true
			if flush == nil {
				flush = time.After(l.Debounce)
			}
		case <-poll.C:
			go l.pollOnce(ctx, in)
		case <-flush:
			flush = nil
			for id := range pending {
				delete(pending, id)
				if err := l.Wake(ctx, id); err != nil && ctx.Err() == nil {
					l.Logger.Warn("could not wake event workflow", "event_id", id, "error", err)
				} else if err == nil {
					l.Logger.Debug("woke event workflow", "event_id", id)
				}
			}
		}
	}
}
