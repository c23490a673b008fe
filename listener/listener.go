// Package listener wakes event workflows when their queue gets rows. It
// replaces the seed's pg_cron schedule: a LISTEN on the queue trigger's
// channel gives sub-second pickup, and a slow safety poll catches rows that
// arrived while no worker was listening.
//
// A LISTEN through a transaction-mode pooler succeeds and then receives
// nothing, because the session that listens goes back to the pooler after
// the statement. So after every (re)connect the listener sends itself a
// notification from another connection; until one arrives it says so once,
// reports it in matchmaking_listener_receiving, and polls every DeafPoll
// instead of every SafetyPoll.
package listener

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/internal/metrics"
	"github.com/eventmatch/matchmaker/store"
)

// Channel is the NOTIFY channel of the matchmaking_queue trigger.
const Channel = "matchmaking_queue"

// WakeFunc starts or signals the workflow of an event.
type WakeFunc func(ctx context.Context, eventID string) error

// Listener turns queue notifications into debounced wake-ups.
type Listener struct {
	// Pool gives the connections that LISTEN (DATABASE_LISTEN_URL: direct
	// or a session-mode pooler) and that send the probe.
	Pool *pgxpool.Pool
	// Store runs the safety poll (DATABASE_URL, which may be pooled).
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
	// ProbeTimeout is how long a new connection waits for the notification
	// it sends itself before the listener declares it deaf. Zero means
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// DeafPoll is the safety poll's interval while no notification has
	// reached the current connection since its probe timed out; never
	// longer than SafetyPoll. Zero means DefaultDeafPoll.
	DeafPoll time.Duration
	// Metrics, when set, gets matchmaking_listener_receiving.
	Metrics *metrics.App

	deaf atomic.Bool
	// listening: a connection holds LISTEN on Channel right now.
	listening  atomic.Bool
	pollChange chan struct{}
	// sendProbe sends the probe; tests delay it.
	sendProbe func(ctx context.Context, channel string) error
}

// Reconnect delays, probe timeout and deaf poll when the Listener sets none.
const (
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultProbeTimeout = 5 * time.Second
	DefaultDeafPoll     = 2 * time.Second
)

// probeChannelPrefix starts the channel a connection probes itself on: a
// channel of its own, so no other listener (an older worker reading
// payloads as event IDs) ever sees the probe.
const probeChannelPrefix = "matchmaking_listener_probe_"

// Listening reports whether a connection holds LISTEN on Channel now: false
// before Run has connected, while it reconnects, and after it returns. The
// worker's readiness endpoint reports it. A connection through a
// transaction-mode pooler holds LISTEN yet receives nothing; that shows in
// matchmaking_listener_receiving and in the log, not here, since restarting
// the worker would not change it.
func (l *Listener) Listening() bool { return l.listening.Load() }

// Run listens until ctx is cancelled. Connection losses are retried; only
// ctx ends it.
func (l *Listener) Run(ctx context.Context) error {
	l.pollChange = make(chan struct{}, 1)
	if l.sendProbe == nil {
		l.sendProbe = func(ctx context.Context, channel string) error {
			_, err := l.Pool.Exec(ctx, `SELECT pg_notify($1, 'probe')`, channel)
			return err
		}
	}
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
	probe := probeChannelPrefix + randomHex()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel+"; LISTEN "+probe); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	l.listening.Store(true)
	defer l.listening.Store(false)
	l.Metrics.SetListenerReceiving(false)
	// Rows enqueued before the LISTEN took effect would otherwise wait for
	// the safety poll.
	healthy = l.pollOnce(ctx, out)

	// The probe comes from another connection, as every enqueue does: a
	// connection through a transaction-mode pooler could otherwise be
	// handed the notification of its own NOTIFY and look healthy.
	var received atomic.Bool
	timeout := l.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	timer := time.AfterFunc(timeout, func() {
		if !received.Load() && ctx.Err() == nil {
			l.setDeaf(true, timeout, describePool(l.Pool))
			// A notification that arrived meanwhile has already called
			// setDeaf(false), which this one just overrode.
			if received.Load() {
				l.setDeaf(false, timeout, "")
			}
		}
	})
	defer timer.Stop()
	go func() {
		if err := l.sendProbe(ctx, probe); err != nil && ctx.Err() == nil {
			l.Logger.Warn("queue listener could not send its probe notification", "error", err)
		}
	}()

	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return healthy, fmt.Errorf("wait for notification: %w", err)
		}
		healthy = true
		if !received.Swap(true) {
			l.Metrics.SetListenerReceiving(true)
			l.setDeaf(false, timeout, "")
		}
		if n.Channel != Channel {
			continue // the probe
		}
		select {
		case out <- n.Payload:
		default:
			// The dispatcher is behind; the safety poll picks the event up.
		}
	}
}

// setDeaf records whether the current connection is known not to receive
// notifications, logs the change once, and makes the dispatcher adopt the
// matching poll interval.
func (l *Listener) setDeaf(deaf bool, timeout time.Duration, target string) {
	if l.deaf.Swap(deaf) == deaf {
		return
	}
	if deaf {
		l.Metrics.SetListenerReceiving(false)
		l.Logger.Warn("queue listener receives no notifications: the NOTIFY it sent itself after connecting did not arrive; "+
			"its connection probably goes through a transaction-mode pooler (Supabase's port 6543, pgbouncer pool_mode=transaction), "+
			"where LISTEN succeeds but nothing is delivered: point DATABASE_LISTEN_URL at a direct connection or a session-mode pooler. "+
			"Until a notification arrives, queues are polled every "+l.deafPoll().String(),
			"listen", target, "probe_timeout", timeout)
	} else {
		l.Logger.Info("queue listener receives notifications again; polling every " + l.SafetyPoll.String())
	}
	select {
	case l.pollChange <- struct{}{}:
	default:
	}
}

func (l *Listener) deafPoll() time.Duration {
	d := l.DeafPoll
	if d <= 0 {
		d = DefaultDeafPoll
	}
	return min(d, l.SafetyPoll)
}

// pollInterval is the safety poll's current interval.
func (l *Listener) pollInterval() time.Duration {
	if l.deaf.Load() {
		return l.deafPoll()
	}
	return l.SafetyPoll
}

func describePool(p *pgxpool.Pool) string {
	c := p.Config().ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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

// dispatchLoop wakes an event's workflow at its first notification, at
// once: a lone newcomer should not wait out the window. Further
// notifications for that event within Debounce of the last wake are
// collected and make one more wake-up when the window ends, so a burst of
// a thousand inserts costs a few signals, not a thousand.
func (l *Listener) dispatchLoop(ctx context.Context, in chan string) {
	poll := time.NewTicker(l.pollInterval())
	defer poll.Stop()
	pending := map[string]bool{}
	// woken holds the events woken within the current window.
	woken := map[string]bool{}
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-in:
			if !woken[id] {
				woken[id] = true
				l.wake(ctx, id)
			} else {
				pending[id] = true
			}
			if flush == nil {
				flush = time.After(l.Debounce)
			}
		case <-l.pollChange:
			poll.Reset(l.pollInterval())
		case <-poll.C:
			go l.pollOnce(ctx, in)
		case <-flush:
			flush = nil
			clear(woken)
			for id := range pending {
				delete(pending, id)
				woken[id] = true
				l.wake(ctx, id)
			}
			// Events woken just now keep a window of their own.
			if len(woken) > 0 {
				flush = time.After(l.Debounce)
			}
		}
	}
}

func (l *Listener) wake(ctx context.Context, id string) {
	if err := l.Wake(ctx, id); err != nil && ctx.Err() == nil {
		l.Logger.Warn("could not wake event workflow", "event_id", id, "error", err)
	} else if err == nil {
		l.Logger.Debug("woke event workflow", "event_id", id)
	}
}
