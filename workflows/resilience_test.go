package workflows

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/activities"
)

// TestWorkerSettingsWin: the batch size and runtime the worker reports in
// DescribeEvent replace whatever the starter put in the input, and survive
// continue-as-new only as the worker says them.
func TestWorkerSettingsWin(t *testing.T) {
	f := newFakeActivities(5)
	f.event.BatchSize = 200
	f.event.MaxRuntime = 7 * time.Second
	starterSettings := testSettings()
	starterSettings.BatchSize = 3000
	h := newHarness(t, starterSettings, f)
	h.at(time.Minute, h.env.CancelWorkflow)
	h.run()
	h.requireCanceled()
	claims := f.callsTo(actClaim)
	require.NotEmpty(t, claims)
	for _, c := range claims {
		assert.Equal(t, 200, c.Limit, "claims must ask for the worker's batch size")
	}
}

// TestWorkerWithoutSettingsKeepsInput: a worker that reports no settings
// (histories recorded before workers owned them) leaves the input's.
func TestWorkerWithoutSettingsKeepsInput(t *testing.T) {
	f := newFakeActivities(5)
	h := newHarness(t, testSettings(), f)
	h.at(time.Minute, h.env.CancelWorkflow)
	h.run()
	h.requireCanceled()
	for _, c := range f.callsTo(actClaim) {
		assert.Equal(t, testSettings().BatchSize, c.Limit)
	}
}

// TestQuarantineRescoresWithoutConsumingStaleRetries: a commit that
// quarantined members sends the batch round again, shows the count, and
// does not count as the event changing under the batch.
func TestQuarantineRescoresWithoutConsumingStaleRetries(t *testing.T) {
	f := newFakeActivities(5)
	f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
		if n <= maxStaleRetries+1 {
			return activities.CommitResult{Stale: true, Quarantined: 1, QuarantinedTotal: n}, nil
		}
		res := f.defaultCommit(ref)
		res.QuarantinedTotal = maxStaleRetries + 1 // still in quarantine after the commit
		return res, nil
	}
	h := newHarness(t, testSettings(), f)
	h.at(5*time.Minute, func() {
		st := h.status()
		assert.Equal(t, 1, st.Batches)
		assert.Zero(t, st.Errors)
		assert.Zero(t, st.StaleRetries)
		assert.Equal(t, maxStaleRetries+1, st.Quarantined)
		h.env.CancelWorkflow()
	})
	h.run()
	h.requireCanceled()
	assert.Equal(t, maxStaleRetries+2, f.count(actScore))
}

// TestDeferredListsAreCounted: lists a commit set aside for departures are
// summed in the status.
func TestDeferredListsAreCounted(t *testing.T) {
	f := newFakeActivities(5, 3)
	f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
		res := f.defaultCommit(ref)
		res.ListsDeferred = 2
		return res, nil
	}
	h := newHarness(t, testSettings(), f)
	h.at(5*time.Minute, func() {
		st := h.status()
		assert.Equal(t, 2, st.Batches)
		assert.Equal(t, 4, st.ListsDeferred)
		h.env.CancelWorkflow()
	})
	h.run()
	h.requireCanceled()
}

func TestPlainError(t *testing.T) {
	app := temporal.NewNonRetryableApplicationError("the database refuses every list of the batch", activities.ErrTypeRowsRefused, nil)
	assert.Equal(t, "the database refuses every list of the batch", plainError(fmt.Errorf("commit: %w", app)))
	timeout := temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil)
	assert.Contains(t, plainError(timeout), "timed out")
	assert.Equal(t, "plain", plainError(errors.New("plain")))
}
