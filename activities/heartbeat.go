package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// HeartbeatTimeout is what the workflow gives the steps that run as regular
// activities (scoring, shards, insights): a worker that freezes or loses
// its connection mid-step is noticed after this long, and the step is
// retried on another worker, instead of after the step's whole time budget.
// Temporal sends heartbeats every 0.8 of it, so keepAlive records far more
// often than that.
const HeartbeatTimeout = 15 * time.Second

// heartbeatEvery is how often keepAlive records a heartbeat.
const heartbeatEvery = 2 * time.Second

// keepAlive heartbeats for the running activity until stop is called, from
// its own goroutine, so a step busy in a long scoring loop still shows it is
// alive. Local activities have no heartbeat; for them it does nothing.
func keepAlive(ctx context.Context) (stop func()) {
	if activity.GetInfo(ctx).IsLocalActivity {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(heartbeatEvery)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
				activity.RecordHeartbeat(ctx, "running")
			}
		}
	}()
	return func() { close(done) }
}
