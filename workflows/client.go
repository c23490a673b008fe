package workflows

import (
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/eventmatch/matchmaker/config"
)

// SettingsFromConfig maps the environment's settings onto the workflow's.
func SettingsFromConfig(c config.Config) Settings {
	return withDefaults(Settings{
		BatchSize:  c.BatchSize,
		MaxRuntime: c.MaxRuntime(),
		IdlePoll:   c.IdlePoll,
	})
}

// Wake starts the event's workflow, or signals the running one, in one call:
// the wake signal is delivered either way. It is how the listener, the safety
// poll and `starter enable` all reach an event.
func Wake(ctx context.Context, c client.Client, taskQueue, eventID string, s Settings) (runID string, err error) {
	opts := client.StartWorkflowOptions{
		ID:        WorkflowID(eventID),
		TaskQueue: taskQueue,
		// A finished or terminated run may be replaced by a new one.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
	run, err := c.SignalWithStartWorkflow(ctx, WorkflowID(eventID), SignalWake, nil, opts,
		EventMatchmaking, Input{EventID: eventID, Settings: s})
	if err != nil {
		return "", fmt.Errorf("start or wake workflow %s: %w", WorkflowID(eventID), err)
	}
	return run.GetRunID(), nil
}
