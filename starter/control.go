package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/connect"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// answerTimeout bounds how long a command waits for a workflow to take a
// change; past it, no worker is likely running.
const answerTimeout = 30 * time.Second

// session holds what the operator commands share: settings, the database
// and Temporal.
type session struct {
	cfg      config.Config
	pool     *pgxpool.Pool
	st       *store.Store
	temporal client.Client
}

func openSession(ctx context.Context, withTemporal bool) (*session, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	pool, err := connect.Database(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &session{cfg: cfg, pool: pool, st: store.New(pool)}
	if err := connect.RequireSchema(ctx, pool); err != nil {
		s.close()
		return nil, err
	}
	if withTemporal {
		if s.temporal, err = connect.Temporal(ctx, cfg, nil); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) close() {
	if s.temporal != nil {
		s.temporal.Close()
	}
	s.pool.Close()
}

// openEvent parses a command's flags and its one event argument, opens the
// session and finds the event: the start of every per-event command. The
// caller closes the session.
func openEvent(ctx context.Context, fs *flag.FlagSet, args []string, withTemporal bool) (*session, store.Event, error) {
	positional, err := parseArgs(fs, args)
	if err != nil {
		return nil, store.Event{}, err
	}
	ref, err := exactlyOneEvent(fs.Name(), positional)
	if err != nil {
		return nil, store.Event{}, err
	}
	s, err := openSession(ctx, withTemporal)
	if err != nil {
		return nil, store.Event{}, err
	}
	ev, err := findEvent(ctx, s.st, ref)
	if err != nil {
		s.close()
		return nil, store.Event{}, err
	}
	return s, ev, nil
}

func eventRef(ev store.Event) workflows.EventRef {
	return workflows.EventRef{ID: ev.ID, Code: ev.Code, Name: ev.Name}
}

// eventOrAll parses `<event>` or `--all`, the shape of pause, resume and
// rematch.
func eventOrAll(cmd string, args []string) (ref string, all bool, err error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	allFlag := fs.Bool("all", false, "every event")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return "", false, err
	}
	switch {
	case *allFlag && len(positional) > 0:
		return "", false, fmt.Errorf("%s takes an event or --all, not both", cmd)
	case *allFlag:
		return "", true, nil
	}
	ref, err = exactlyOneEvent(cmd, positional)
	return ref, false, err
}

// cmdPauseResume sends the pause or resume update, which returns once the
// workflow has taken it.
func cmdPauseResume(ctx context.Context, update string, args []string, out io.Writer) error {
	ref, all, err := eventOrAll(update, args)
	if err != nil {
		return err
	}
	s, err := openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()

	var ids []string
	if all {
		if ids, err = s.runningWorkflows(ctx); err != nil {
			return err
		}
		if len(ids) == 0 {
			fmt.Fprintf(out, "no running matchmaking workflows on task queue %s\n", s.cfg.TaskQueue)
			return nil
		}
	} else {
		ev, err := findEvent(ctx, s.st, ref)
		if err != nil {
			return err
		}
		ids = []string{workflows.WorkflowID(ev.ID)}
	}
	var failed []string
	for _, id := range ids {
		st, err := s.update(ctx, id, update)
		if err != nil {
			if !all {
				return err
			}
			fmt.Fprintf(out, "%s: %v\n", id, oneLine(err))
			failed = append(failed, id)
			continue
		}
		fmt.Fprintf(out, "%s: %s (queue %d, %d users matched)\n", st.EventCode, st.Phase, st.QueueDepth, st.UsersMatched)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s failed for %d of %d workflows", update, len(failed), len(ids))
	}
	return nil
}

// runningWorkflows finds the running event workflows of this task queue
// through Temporal's visibility, not a list kept elsewhere.
func (s *session) runningWorkflows(ctx context.Context) ([]string, error) {
	query := fmt.Sprintf("WorkflowType = 'EventMatchmaking' AND ExecutionStatus = 'Running' AND TaskQueue = '%s'",
		strings.ReplaceAll(s.cfg.TaskQueue, "'", ""))
	var ids []string
	var next []byte
	for {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.cfg.TemporalNamespace, Query: query, NextPageToken: next,
		})
		if err != nil {
			return nil, fmt.Errorf("list running matchmaking workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			return ids, nil
		}
	}
}

// update sends an update to a running event workflow and returns its status.
func (s *session) update(ctx context.Context, workflowID, name string) (workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	handle, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var st workflows.Status
	if err == nil {
		err = handle.Get(ctx, &st)
	}
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return st, fmt.Errorf("workflow %s is not running (is matchmaking enabled? `starter enable` starts it)", workflowID)
	case ctx.Err() != nil:
		return st, fmt.Errorf("workflow %s did not answer within %s: is a worker running on task queue %s?",
			workflowID, answerTimeout, s.cfg.TaskQueue)
	case err != nil:
		return st, fmt.Errorf("%s workflow %s: %w", name, workflowID, err)
	}
	return st, nil
}

func cmdDisable(ctx context.Context, args []string, out io.Writer) error {
	s, ev, err := openEvent(ctx, flag.NewFlagSet("disable", flag.ContinueOnError), args, true)
	if err != nil {
		return err
	}
	defer s.close()
	dropped, err := s.st.DisableEvent(ctx, ev.ID)
	if err != nil {
		return err
	}
	id := workflows.WorkflowID(ev.ID)
	finished := "no workflow was running"
	if _, err := s.update(ctx, id, workflows.SignalDisable); err == nil {
		waitCtx, cancel := context.WithTimeout(ctx, answerTimeout)
		defer cancel()
		if err := s.temporal.GetWorkflow(waitCtx, id, "").Get(waitCtx, nil); err != nil {
			return fmt.Errorf("matchmaking is off for %s, but its workflow did not finish: %w", ev.Code, err)
		}
		finished = "its workflow finished"
	} else if !strings.Contains(err.Error(), "is not running") {
		return fmt.Errorf("matchmaking is off for %s, but: %w", ev.Code, err)
	}
	counts, err := s.st.MatchCounts(ctx, ev.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "matchmaking disabled for %s: %s; %d queued members dropped; %d match rows kept\n",
		ev.Code, finished, dropped, counts.Rows)
	return nil
}

func cmdRematch(ctx context.Context, args []string, out io.Writer) error {
	ref, all, err := eventOrAll("rematch", args)
	if err != nil {
		return err
	}
	s, err := openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	var events []store.Event
	if all {
		if events, err = s.st.EnabledEvents(ctx); err != nil {
			return err
		}
		if len(events) == 0 {
			fmt.Fprintln(out, "no event has matchmaking enabled")
			return nil
		}
	} else {
		ev, err := findEvent(ctx, s.st, ref)
		if err != nil {
			return err
		}
		if !ev.MatchmakingEnabled {
			return fmt.Errorf("matchmaking is not enabled for %s; `starter enable %s` turns it on and matches everyone", ev.Code, ev.Code)
		}
		events = []store.Event{ev}
	}
	settings := workflows.SettingsFromConfig(s.cfg)
	for _, ev := range events {
		queued, err := s.st.EnqueueEvent(ctx, ev.ID, store.PriorityEventEnable)
		if err != nil {
			return err
		}
		if _, err := workflows.Wake(ctx, s.temporal, s.cfg.TaskQueue, eventRef(ev), settings); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d members queued for re-matching\n", ev.Code, queued)
	}
	return nil
}

func cmdClearQueue(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clear-queue", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "really remove every queued member")
	s, ev, err := openEvent(ctx, fs, args, false)
	if err != nil {
		return err
	}
	defer s.close()
	if !*yes {
		n, err := s.st.QueueDepth(ctx, ev.ID)
		if err != nil {
			return err
		}
		return fmt.Errorf("clear-queue would remove all %d queued members of %s; run it again with --yes", n, ev.Code)
	}
	n, err := s.st.ClearQueue(ctx, ev.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "removed %d queued members of %s\n", n, ev.Code)
	return nil
}

// statusRow is one event in `starter status`, as printed and as JSON.
type statusRow struct {
	EventID          string     `json:"event_id"`
	Code             string     `json:"code"`
	Name             string     `json:"name"`
	Enabled          bool       `json:"matchmaking_enabled"`
	State            string     `json:"state"`
	Workflow         string     `json:"workflow"`
	Members          int        `json:"members"`
	UsersMatched     int        `json:"users_matched"`
	Queue            int        `json:"queue"`
	QueueByPriority  [4]int     `json:"queue_by_priority"`
	InProgress       int        `json:"in_progress"`
	OldestWaiting    *time.Time `json:"oldest_waiting"`
	LastBatchAt      *time.Time `json:"last_batch_at"`
	Errors           int        `json:"errors"`
	LastError        string     `json:"last_error,omitempty"`
	AIInsights       int        `json:"ai_insights"`
	FallbackInsights int        `json:"fallback_insights"`
}

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 1 {
		return fmt.Errorf("status takes at most one event code or uuid, got %d arguments", len(positional))
	}
	s, err := openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	eventID := ""
	if len(positional) == 1 {
		ev, err := findEvent(ctx, s.st, positional[0])
		if err != nil {
			return err
		}
		eventID = ev.ID
	}
	statuses, err := s.st.EventStatuses(ctx, eventID)
	if err != nil {
		return err
	}
	rows := make([]statusRow, 0, len(statuses))
	for _, st := range statuses {
		rows = append(rows, s.statusRow(ctx, st))
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(out, "no event has matchmaking enabled or a queue")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tNAME\tSTATE\tQUEUE (P3/P2/P1/P0)\tOLDEST WAITING\tMATCHED\tERRORS\tLAST BATCH\tAI/FALLBACK")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%d/%d/%d/%d)\t%s\t%d/%d\t%d\t%s\t%d/%d\n",
			r.Code, r.Name, r.State, r.Queue, r.QueueByPriority[3], r.QueueByPriority[2], r.QueueByPriority[1], r.QueueByPriority[0],
			ago(r.OldestWaiting), r.UsersMatched, r.Members, r.Errors, ago(r.LastBatchAt), r.AIInsights, r.FallbackInsights)
	}
	return tw.Flush()
}

// statusRow joins the database's figures with the workflow's own state; a
// workflow that is not running is said so, not treated as an error.
func (s *session) statusRow(ctx context.Context, st store.EventStatus) statusRow {
	row := statusRow{
		EventID: st.ID, Code: st.Code, Name: st.Name, Enabled: st.MatchmakingEnabled,
		Workflow: workflows.WorkflowID(st.ID), Members: st.Members, UsersMatched: st.MembersMatched,
		Queue: st.QueueSize(), QueueByPriority: st.Queued, InProgress: st.InProgress,
		OldestWaiting: st.OldestWaiting, LastBatchAt: st.LastBatchAt, Errors: st.FailedBatches24h,
		AIInsights: st.AIInsights, FallbackInsights: st.FallbackInsights,
	}
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, row.Workflow, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		row.State = "workflow not running"
		return row
	case err != nil:
		row.State = "unknown: " + oneLine(err)
		return row
	}
	if status := desc.GetWorkflowExecutionInfo().GetStatus(); status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		row.State = "workflow " + strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_"))
		return row
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wf workflows.Status
	v, err := s.temporal.QueryWorkflow(qctx, row.Workflow, "", workflows.QueryStatus)
	if err == nil {
		err = v.Get(&wf)
	}
	if err != nil {
		row.State = "running (no worker answered the status query)"
		return row
	}
	row.State = wf.Phase
	row.Errors = max(row.Errors, wf.Errors)
	row.LastError = wf.LastError
	return row
}

func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}
