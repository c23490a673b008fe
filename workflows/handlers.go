package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

func (r *run) status() Status {
	st := Status{EventID: r.eventID, EventCode: r.code, EventName: r.name, State: r.state, Phase: r.phase}
	switch {
	case r.disabled:
		st.Phase = PhaseDisabled
	case r.state.Paused:
		st.Phase = PhasePaused
	}
	return st
}

func (r *run) applySignals() {
	for r.pauseCh.ReceiveAsync(nil) {
		r.state.Paused = true
	}
	for r.resumeCh.ReceiveAsync(nil) {
		r.state.Paused = false
	}
	for r.wakeCh.ReceiveAsync(nil) {
		r.wakes++
	}
	for r.disableCh.ReceiveAsync(nil) {
		r.disabled = true
	}
}

func (r *run) registerHandlers(ctx workflow.Context) error {
	r.pauseCh = workflow.GetSignalChannel(ctx, SignalPause)
	r.resumeCh = workflow.GetSignalChannel(ctx, SignalResume)
	r.wakeCh = workflow.GetSignalChannel(ctx, SignalWake)
	r.disableCh = workflow.GetSignalChannel(ctx, SignalDisable)
	// This goroutine applies signals while the loop is blocked. It waits on
	// Len, not Receive: a blocked Receive/Select takes a signal out of the
	// channel at delivery but applies it only when the goroutine runs, which
	// is after the loop when the signal comes in the same workflow task as
	// an activity result. The loop would then claim while paused, or
	// continue as new and drop the signal. Left in the channel, the loop's
	// own applySignals sees it.
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool {
				return r.pauseCh.Len() > 0 || r.resumeCh.Len() > 0 || r.wakeCh.Len() > 0 || r.disableCh.Len() > 0
			}); err != nil {
				return
			}
			r.applySignals()
		}
	})

	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) {
		return r.status(), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	// The updates return once the workflow has taken the change, with the
	// resulting status, so `starter pause` can print the new state.
	updates := []struct {
		name     string
		apply    func()
		validate func() error
	}{
		{UpdatePause, func() { r.state.Paused = true }, r.refuseOnceDisabled},
		{UpdateResume, func() { r.state.Paused = false }, r.refuseOnceDisabled},
		// Disabling twice is harmless and the second caller wants the
		// same answer as the first.
		{UpdateDisable, func() { r.disabled = true }, func() error { return nil }},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, func(ctx workflow.Context) (Status, error) {
			r.applySignals()
			u.apply()
			r.publish(ctx)
			return r.status(), nil
		}, workflow.UpdateHandlerOptions{
			// A validator reads but never changes state; a refusal is not
			// written to history.
			Validator: func(workflow.Context) error { return u.validate() },
		}); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

// ErrTypeDisabled is the type of the error an update gets from a run whose
// event is being disabled; the run finishes after its current batch.
const ErrTypeDisabled = "MatchmakingDisabled"

// refuseOnceDisabled refuses pause and resume once the run is disabled: it
// is finishing, and the change would apply to nothing.
func (r *run) refuseOnceDisabled() error {
	// Only reads: a disable signal not yet applied still counts.
	if r.disabled || r.disableCh.Len() > 0 {
		return temporal.NewNonRetryableApplicationError(
			"matchmaking is being disabled for this event; `starter enable` starts it again", ErrTypeDisabled, nil)
	}
	return nil
}

// finish ends the run of a disabled event cleanly.
func (r *run) finish(ctx workflow.Context) error {
	r.publish(ctx)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	r.logger.Info("matchmaking disabled for the event; workflow finished")
	return nil
}

// publish shows the run's state in the Web UI: search attributes for
// filtering, and the current details in Markdown.
func (r *run) publish(ctx workflow.Context) {
	st := r.status()
	p := &r.published
	if !p.set || p.paused != r.state.Paused || p.usersMatched != r.state.UsersMatched || p.queueDepth != r.state.QueueDepth {
		updates := []temporal.SearchAttributeUpdate{
			AttrPaused.ValueSet(r.state.Paused),
			AttrUsersMatched.ValueSet(int64(r.state.UsersMatched)),
			AttrQueueDepth.ValueSet(int64(r.state.QueueDepth)),
		}
		if r.code != "" {
			updates = append(updates, AttrEventCode.ValueSet(r.code))
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			r.logger.Warn("could not update search attributes", "error", err)
		} else {
			p.set, p.paused, p.usersMatched, p.queueDepth = true, r.state.Paused, r.state.UsersMatched, r.state.QueueDepth
		}
	}
	workflow.SetCurrentDetails(ctx, currentDetails(st))
}

// currentDetails is the Markdown of the Web UI's details. It formats with
// Sprintf, which workflowcheck knows to be deterministic (it cannot tell
// that of Fprintf into a Builder).
func currentDetails(st Status) string {
	var b strings.Builder
	// The state line comes first: the Web UI shows only the top of the
	// details without scrolling.
	b.WriteString(fmt.Sprintf("**State:** %s · %d users matched · queue %d · %d batches · %d errors · insights %d AI / %d fallback",
		strings.ToUpper(string(st.Phase[:1]))+string(st.Phase[1:]), st.UsersMatched, st.QueueDepth, st.Batches, st.Errors,
		st.Insights.AI, st.Insights.Fallback))
	if st.Quarantined > 0 {
		b.WriteString(fmt.Sprintf(" · **%d quarantined** (`starter status %s`)", st.Quarantined, markdownText(st.EventCode)))
	}
	b.WriteString("\n\n")
	b.WriteString(fmt.Sprintf("## Event %s\n\n", markdownText(st.EventCode)))
	if st.EventName != "" {
		b.WriteString(fmt.Sprintf("%s\n\n", markdownText(st.EventName)))
	}
	if st.LastError != "" {
		b.WriteString(fmt.Sprintf("Last error: `%s`\n", strings.ReplaceAll(st.LastError, "`", "'")))
	}
	return b.String()
}

// markdownText keeps an operator-chosen name from turning into Markdown.
func markdownText(s string) string {
	return strings.NewReplacer("*", "\\*", "_", "\\_", "#", "\\#", "`", "'", "[", "\\[", "|", "\\|").Replace(s)
}
