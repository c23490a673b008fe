package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
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
	"github.com/eventmatch/matchmaker/internal/telemetry"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// answerTimeout bounds how long a command waits for a workflow to take a
// change; past it, no worker is likely running.
const answerTimeout = 30 * time.Second

// session holds what the operator commands share: settings, the database
// and Temporal.
type session struct {
	cfg         config.Config
	pool        *pgxpool.Pool
	st          *store.Store
	temporal    client.Client
	stopTracing func() error
}

func openSession(ctx context.Context, withTemporal bool) (*session, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	// With tracing on, a command's Temporal calls start the traces the
	// worker's workflow and activity spans continue.
	stopTracing, err := telemetry.Start(ctx, "matchmaker-starter")
	if err != nil {
		return nil, err
	}
	pool, err := connect.Database(ctx, cfg)
	if err != nil {
		_ = stopTracing() // nothing was traced yet
		return nil, err
	}
	s := &session{cfg: cfg, pool: pool, st: store.New(pool), stopTracing: stopTracing}
	if err := connect.RequireSchema(ctx, pool); err != nil {
		s.close()
		return nil, err
	}
	if withTemporal {
		if s.temporal, err = connect.Temporal(ctx, cfg, nil, workflows.SearchAttributes); err != nil {
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
	if err := s.stopTracing(); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
	}
}

// openEvent parses and checks a command's flags and its one event argument,
// opens the session and finds the event: the start of every per-event
// command. Bad input is refused before anything is connected. The caller
// closes the session.
func openEvent(ctx context.Context, fs *flagSet, args []string, withTemporal bool) (*session, store.Event, error) {
	positional, err := fs.parse(args)
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
	fs := newFlagSet(cmd)
	allFlag := fs.Bool("all", false, "every event")
	positional, err := fs.parse(args)
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
func cmdPauseResume(ctx context.Context, cmd, update string, args []string, out io.Writer) error {
	ref, all, err := eventOrAll(cmd, args)
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

// notRunningError: the event has no running workflow to update.
type notRunningError struct{ workflowID string }

func (e *notRunningError) Error() string {
	return fmt.Sprintf("workflow %s is not running (is matchmaking enabled? `starter enable` starts it)", e.workflowID)
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
		return st, &notRunningError{workflowID: workflowID}
	case ctx.Err() != nil:
		return st, fmt.Errorf("workflow %s did not answer within %s: is a worker running on task queue %s?",
			workflowID, answerTimeout, s.cfg.TaskQueue)
	case err != nil:
		return st, fmt.Errorf("%s workflow %s: %w", name, workflowID, err)
	}
	return st, nil
}

func cmdDisable(ctx context.Context, args []string, out io.Writer) error {
	s, ev, err := openEvent(ctx, newFlagSet("disable"), args, true)
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
	if _, err := s.update(ctx, id, workflows.UpdateDisable); err == nil {
		waitCtx, cancel := context.WithTimeout(ctx, answerTimeout)
		defer cancel()
		if err := s.temporal.GetWorkflow(waitCtx, id, "").Get(waitCtx, nil); err != nil {
			return fmt.Errorf("matchmaking is off for %s, but its workflow did not finish: %w", ev.Code, err)
		}
		finished = "its workflow finished"
	} else if notRunning := (*notRunningError)(nil); !errors.As(err, &notRunning) {
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
	settings := workflows.NewSettings(s.cfg.BatchSize, s.cfg.MaxRuntime(), s.cfg.IdlePoll)
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
	fs := newFlagSet("clear-queue")
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

// cmdRetryQuarantined takes the event's quarantined members out of
// quarantine, enqueues them and wakes the event's workflow, as enable and
// rematch do, so they are matched at once.
func cmdRetryQuarantined(ctx context.Context, args []string, out io.Writer) error {
	s, ev, err := openEvent(ctx, newFlagSet("retry-quarantined"), args, true)
	if err != nil {
		return err
	}
	defer s.close()
	if !ev.MatchmakingEnabled {
		return fmt.Errorf("matchmaking is not enabled for %s; `starter enable %s` turns it on, then retry", ev.Code, ev.Code)
	}
	n, err := s.st.RetryQuarantined(ctx, ev.ID)
	if err != nil {
		return quarantineSchemaHint(err)
	}
	if n == 0 {
		fmt.Fprintf(out, "event %s: no quarantined members\n", ev.Code)
		return nil
	}
	fmt.Fprintf(out, "event %s: %s enqueued again\n", ev.Code, plural(n, "quarantined member", "quarantined members"))
	if _, err := workflows.Wake(ctx, s.temporal, s.cfg.TaskQueue, eventRef(ev), workflows.NewSettings(s.cfg.BatchSize, s.cfg.MaxRuntime(), s.cfg.IdlePoll)); err != nil {
		return fmt.Errorf("the members are queued, but the workflow was not woken (the worker's safety poll will find them): %w", err)
	}
	return nil
}

// quarantineSchemaHint says what to do when the database predates the
// quarantine table.
func quarantineSchemaHint(err error) error {
	if store.IsUndefinedTable(err) {
		return errors.New("the database has no quarantine table yet; run `starter migrate` first")
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
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
	// ListsDeferred is the workflow's count of lists set aside because they
	// named a member who left meanwhile.
	ListsDeferred int `json:"lists_deferred"`
	// Quarantined is the database's count, the source of truth (the
	// workflow's own figure is as of its last quarantine).
	Quarantined int `json:"quarantined"`
	// QuarantinedMembers, for `status <event>` only: the newest few.
	QuarantinedMembers []quarantinedRow `json:"quarantined_members,omitempty"`
}

type quarantinedRow struct {
	UserID        string    `json:"user_id"`
	DisplayName   string    `json:"display_name"`
	Reason        string    `json:"reason"`
	QuarantinedAt time.Time `json:"quarantined_at"`
}

// statusMembersShown is how many quarantined members `status <event>` lists.
const statusMembersShown = 10

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := fs.parse(args)
	if err != nil {
		return err
	}
	ref := ""
	switch len(positional) {
	case 0:
	case 1:
		if ref, err = checkEventRef(positional[0]); err != nil {
			return err
		}
	default:
		return fmt.Errorf("status takes at most one event code or uuid, got %d arguments", len(positional))
	}
	s, err := openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	eventID := ""
	if ref != "" {
		ev, err := findEvent(ctx, s.st, ref)
		if err != nil {
			return err
		}
		eventID = ev.ID
	}
	statuses, err := s.st.EventStatuses(ctx, eventID)
	if err != nil {
		return quarantineSchemaHint(err)
	}
	rows := make([]statusRow, 0, len(statuses))
	for _, st := range statuses {
		row := s.statusRow(ctx, st)
		row.Quarantined = st.Quarantined
		if ref != "" && st.Quarantined > 0 {
			quarantined, err := s.st.QuarantinedMembers(ctx, st.ID)
			if err != nil {
				return err
			}
			for _, m := range quarantined[:min(len(quarantined), statusMembersShown)] {
				row.QuarantinedMembers = append(row.QuarantinedMembers, quarantinedRow(m))
			}
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return writeStatus(out, rows, ref != "", time.Now())
}

// writeStatus prints status as text: a table of the events, then for each
// event what needs a second look (quarantined members, deferred lists, the
// workflow's last error), one line each, prefixed by the event's code when
// several events are shown.
func writeStatus(out io.Writer, rows []statusRow, single bool, now time.Time) error {
	if len(rows) == 0 {
		fmt.Fprintln(out, "no event has matchmaking enabled or a queue")
		return nil
	}
	ago := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return now.Sub(*t).Round(time.Second).String() + " ago"
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tNAME\tSTATE\tQUEUE (P3/P2/P1/P0)\tOLDEST WAITING\tMATCHED\tERRORS\tLAST BATCH\tAI/FALLBACK\tQUARANTINED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%d/%d/%d/%d)\t%s\t%d/%d\t%d\t%s\t%d/%d\t%d\n",
			clip(r.Code, maxEventRefChars), clip(r.Name, 60), clip(r.State, 120),
			r.Queue, r.QueueByPriority[3], r.QueueByPriority[2], r.QueueByPriority[1], r.QueueByPriority[0],
			ago(r.OldestWaiting), r.UsersMatched, r.Members, r.Errors, ago(r.LastBatchAt), r.AIInsights, r.FallbackInsights,
			r.Quarantined)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var details []string
	for _, r := range rows {
		prefix := ""
		if !single {
			prefix = clip(r.Code, maxEventRefChars) + ": "
		}
		if r.Quarantined > 0 {
			details = append(details, fmt.Sprintf("%squarantined: %d (starter retry-quarantined %s to retry)",
				prefix, r.Quarantined, shellWord(r.Code)))
			for _, m := range r.QuarantinedMembers {
				name := clip(m.DisplayName, 80)
				if name == "" {
					name = "(no longer a member)"
				}
				details = append(details, fmt.Sprintf("  %s, user %s, quarantined %s: %s",
					name, m.UserID, ago(&m.QuarantinedAt), clip(m.Reason, 300)))
			}
			if more := r.Quarantined - len(r.QuarantinedMembers); single && more > 0 {
				details = append(details, fmt.Sprintf("  … and %d more", more))
			}
		}
		if r.ListsDeferred > 0 {
			details = append(details, fmt.Sprintf("%slists deferred: %d (they named a member who left; their owners were matched again)",
				prefix, r.ListsDeferred))
		}
		if r.LastError != "" {
			details = append(details, fmt.Sprintf("%slast error: %s", prefix, clip(r.LastError, 300)))
		}
	}
	if len(details) > 0 {
		fmt.Fprintf(out, "\n%s\n", strings.Join(details, "\n"))
	}
	return nil
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// shellWord quotes an event code for a command line an operator can paste.
func shellWord(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(clip(s, maxEventRefChars), "'", `'\''`) + "'"
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
	desc, err := s.temporal.DescribeWorkflow(ctx, row.Workflow, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		row.State = "workflow not running"
		return row
	case err != nil:
		row.State = "unknown: " + oneLine(err)
		return row
	}
	if status := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus(); status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
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
	row.State = string(wf.Phase)
	row.Errors = max(row.Errors, wf.Errors)
	row.LastError = wf.LastError
	row.ListsDeferred = wf.ListsDeferred
	return row
}
