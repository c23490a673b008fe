package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/activities"
)

func TestStopDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ timeout, want time.Duration }{
		{0, 0},
		{time.Second, 800 * time.Millisecond},
		{3 * time.Second, 2400 * time.Millisecond},
		{25 * time.Second, 20 * time.Second}, // the default: 5 s to release and report
		{10 * time.Minute, 10*time.Minute - 5*time.Second},
	} {
		if got := activities.StopDeadline(tc.timeout); got != tc.want {
			t.Errorf("StopDeadline(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}

// A worker past its stop deadline claims no new batch: the claim fails
// retryably, before it reaches the database (this Activities has none), so
// the workflow claims on another worker instead.
func TestStoppingWorkerClaimsNothingAfterTheDeadline(t *testing.T) {
	t.Parallel()
	acts := &activities.Activities{}
	drain := activities.NewDrain(acts)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{drain.Interceptor()}})
	env.RegisterActivity(acts)

	running, deadline := drain.StartStopping(0)
	if running != 0 || deadline != 0 {
		t.Fatalf("StartStopping(0) = %d running, deadline %s; want 0 and 0", running, deadline)
	}
	_, err := env.ExecuteActivity(acts.ClaimBatch, activities.ClaimInput{EventID: "e", Token: "run/1", Limit: 10})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeWorkerStopping || appErr.NonRetryable() {
		t.Fatalf("claim on a stopped worker: %v; want a retryable %s error", err, activities.ErrTypeWorkerStopping)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if sum := drain.WaitStopped(ctx); sum != (activities.DrainSummary{}) {
		t.Errorf("summary %+v, want nothing run", sum)
	}
}
