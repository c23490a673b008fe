package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// NewSettings are the workflow's settings from the environment's (the
// binaries pass config's BATCH_SIZE, MAX_RUNTIME_MS and IDLE_POLL), with
// defaults for whatever is zero.
func NewSettings(batchSize int, maxRuntime, idlePoll time.Duration) Settings {
	return withDefaults(Settings{BatchSize: batchSize, MaxRuntime: maxRuntime, IdlePoll: idlePoll})
}

// EventRef names an event for the Web UI; Code and Name may be empty when
// the caller only knows the ID.
type EventRef struct {
	ID   string
	Code string
	Name string
}

// Wake starts the event's workflow, or signals the running one, in one call:
// the wake signal is delivered either way. It is how the listener, the safety
// poll and `starter enable` all reach an event.
func Wake(ctx context.Context, c client.Client, taskQueue string, ev EventRef, s Settings) (runID string, err error) {
	summary := "Matchmaking for event " + ev.ID
	if ev.Code != "" {
		summary = fmt.Sprintf("Matchmaking for event %s (%s)", ev.Code, ev.Name)
	}
	opts := client.StartWorkflowOptions{
		ID:        WorkflowID(ev.ID),
		TaskQueue: taskQueue,
		// A finished or terminated run may be replaced by a new one.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         summary,
	}
	run, err := c.SignalWithStartWorkflow(ctx, WorkflowID(ev.ID), SignalWake, nil, opts,
		EventMatchmaking, Input{EventID: ev.ID, Settings: s})
	if err != nil {
		return "", fmt.Errorf("start or wake workflow %s: %w", WorkflowID(ev.ID), err)
	}
	return run.GetRunID(), nil
}

// WakeBackfill starts the event's AI backfill workflow, or wakes the running
// one, in one call (signal-with-start under BackfillWorkflowID, so an event
// has one backfill however many commits call it at once).
func WakeBackfill(ctx context.Context, c client.Client, taskQueue, eventID string, s BackfillSettings) error {
	if _, err := c.SignalWithStartWorkflow(ctx, BackfillWorkflowID(eventID), SignalWake, nil,
		backfillStartOptions(taskQueue, eventID), AIBackfill, BackfillInput{EventID: eventID, Settings: s}); err != nil {
		return fmt.Errorf("start or wake workflow %s: %w", BackfillWorkflowID(eventID), err)
	}
	return nil
}

// EnsureBackfill starts the event's AI backfill workflow unless one is
// running, and leaves a running one alone: no wake, so a backfill waiting
// out a spent budget or a dead endpoint's backoff is not cut short.
func EnsureBackfill(ctx context.Context, c client.Client, taskQueue, eventID string, s BackfillSettings) error {
	opts := backfillStartOptions(taskQueue, eventID)
	opts.WorkflowIDConflictPolicy = enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	if _, err := c.ExecuteWorkflow(ctx, opts, AIBackfill, BackfillInput{EventID: eventID, Settings: s}); err != nil {
		return fmt.Errorf("start workflow %s: %w", BackfillWorkflowID(eventID), err)
	}
	return nil
}

func backfillStartOptions(taskQueue, eventID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                    BackfillWorkflowID(eventID),
		TaskQueue:             taskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         "AI insights for event " + eventID,
	}
}

// EventPaused reports whether the event's workflow is paused, from its
// MatchmakingPaused search attribute, which it upserts whenever it takes a
// pause or a resume. Describe reads the workflow's own record, not the
// visibility store, so it is current. An event without a workflow is not
// paused.
func EventPaused(ctx context.Context, c client.Client, eventID string) (bool, error) {
	desc, err := c.DescribeWorkflow(ctx, WorkflowID(eventID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe workflow %s: %w", WorkflowID(eventID), err)
	}
	paused, _ := desc.TypedSearchAttributes.GetBool(AttrPaused)
	return paused, nil
}
