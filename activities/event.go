package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/store"
)

// ErrTypeEventNotFound marks an event that no longer exists.
const ErrTypeEventNotFound = "EventNotFound"

// EventInfo is what the workflow shows about its event: code and name for
// the Web UI, and whether matchmaking is still on. BatchSize and MaxRuntime
// are the worker's settings, which the workflow adopts (zero when the
// worker leaves the workflow's own, and in histories recorded before the
// worker owned them).
type EventInfo struct {
	Code       string
	Name       string
	Enabled    bool
	BatchSize  int
	MaxRuntime time.Duration
}

// DescribeEvent reads the event's code, name and flag.
func (a *Activities) DescribeEvent(ctx context.Context, eventID string) (EventInfo, error) {
	ev, err := a.Store.FindEvent(ctx, eventID)
	if errors.Is(err, store.ErrEventNotFound) {
		return EventInfo{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeEventNotFound, err)
	}
	if err != nil {
		return EventInfo{}, err
	}
	return EventInfo{Code: ev.Code, Name: ev.Name, Enabled: ev.MatchmakingEnabled,
		BatchSize: a.BatchSize, MaxRuntime: a.MaxRuntime}, nil
}
