package main

import (
	"context"
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
	"go.temporal.io/sdk/converter"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/cli"
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

func (a *app) openSession(ctx context.Context, withTemporal bool) (*session, error) {
	cfg, err := a.loadConfig()
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

// openEvent opens the session and finds the event named by ref, which the
// command's arguments check has passed: the start of every per-event
// command. The caller closes the session.
func (a *app) openEvent(ctx context.Context, ref string, withTemporal bool) (*session, store.Event, error) {
	s, err := a.openSession(ctx, withTemporal)
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

// updateResults are the workflows pause or resume reached, and how each
// answered.
type updateResults struct {
	// taskQueue is where --all looked, for the text when it found none.
	taskQueue string
	Workflows []updateResult `json:"workflows"`
}

// updateResult is one workflow's answer to pause or resume: its new state,
// or why it did not take the update.
type updateResult struct {
	WorkflowID   string `json:"workflow_id"`
	EventCode    string `json:"event_code,omitempty"`
	Phase        string `json:"phase,omitempty"`
	Queue        int    `json:"queue"`
	UsersMatched int    `json:"users_matched"`
	Error        string `json:"error,omitempty"`
}

func (r updateResults) writeText(w io.Writer) error {
	if len(r.Workflows) == 0 {
		_, err := fmt.Fprintf(w, "no running matchmaking workflows on task queue %s\n", r.taskQueue)
		return err
	}
	for _, u := range r.Workflows {
		if u.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", u.WorkflowID, u.Error)
			continue
		}
		fmt.Fprintf(w, "%s: %s (queue %d, %d users matched)\n", u.EventCode, u.Phase, u.Queue, u.UsersMatched)
	}
	return nil
}

// pauseResume sends the pause or resume update to the event's workflow, or
// with ref "" (--all) to every running one; it returns once the workflows
// have taken it.
func (a *app) pauseResume(ctx context.Context, update, ref string, format outputFormat) error {
	s, err := a.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()

	all := ref == ""
	var ids []string
	if all {
		if ids, err = s.runningWorkflows(ctx); err != nil {
			return err
		}
	} else {
		ev, err := findEvent(ctx, s.st, ref)
		if err != nil {
			return err
		}
		ids = []string{workflows.WorkflowID(ev.ID)}
	}
	res := updateResults{taskQueue: s.cfg.TaskQueue, Workflows: []updateResult{}}
	failed := 0
	for _, id := range ids {
		st, err := s.update(ctx, id, update)
		if err != nil {
			if !all {
				return err
			}
			res.Workflows = append(res.Workflows, updateResult{WorkflowID: id, Error: cli.OneLine(err.Error())})
			failed++
			continue
		}
		res.Workflows = append(res.Workflows, updateResult{WorkflowID: id, EventCode: st.EventCode,
			Phase: string(st.Phase), Queue: st.QueueDepth, UsersMatched: st.UsersMatched})
	}
	if err := a.print(format, res); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%s failed for %d of %d workflows", update, failed, len(ids))
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

// disableResult is what disable did.
type disableResult struct {
	Event eventJSON `json:"event"`
	// WorkflowFinished is false when no workflow was running.
	WorkflowFinished bool `json:"workflow_finished"`
	QueuedDropped    int  `json:"queued_dropped"`
	MatchRowsKept    int  `json:"match_rows_kept"`
}

func (r disableResult) writeText(w io.Writer) error {
	finished := "no workflow was running"
	if r.WorkflowFinished {
		finished = "its workflow finished"
	}
	_, err := fmt.Fprintf(w, "matchmaking disabled for %s: %s; %d queued members dropped; %d match rows kept\n",
		r.Event.Code, finished, r.QueuedDropped, r.MatchRowsKept)
	return err
}

func (a *app) disable(ctx context.Context, ref string, format outputFormat) error {
	s, ev, err := a.openEvent(ctx, ref, true)
	if err != nil {
		return err
	}
	defer s.close()
	dropped, err := s.st.DisableEvent(ctx, ev.ID)
	if err != nil {
		return err
	}
	res := disableResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, QueuedDropped: dropped}
	id := workflows.WorkflowID(ev.ID)
	if _, err := s.update(ctx, id, workflows.UpdateDisable); err == nil {
		waitCtx, cancel := context.WithTimeout(ctx, answerTimeout)
		defer cancel()
		if err := s.temporal.GetWorkflow(waitCtx, id, "").Get(waitCtx, nil); err != nil {
			return fmt.Errorf("matchmaking is off for %s, but its workflow did not finish: %w", ev.Code, err)
		}
		res.WorkflowFinished = true
	} else if notRunning := (*notRunningError)(nil); !errors.As(err, &notRunning) {
		return fmt.Errorf("matchmaking is off for %s, but: %w", ev.Code, err)
	}
	counts, err := s.st.MatchCounts(ctx, ev.ID)
	if err != nil {
		return err
	}
	res.MatchRowsKept = counts.Rows
	return a.print(format, res)
}

// rematchResult is the events rematch queued again.
type rematchResult struct {
	Events []rematchedEvent `json:"events"`
}

type rematchedEvent struct {
	eventJSON
	Queued int `json:"queued"`
}

func (r rematchResult) writeText(w io.Writer) error {
	if len(r.Events) == 0 {
		_, err := fmt.Fprintln(w, "no event has matchmaking enabled")
		return err
	}
	for _, ev := range r.Events {
		fmt.Fprintf(w, "%s: %d members queued for re-matching\n", ev.Code, ev.Queued)
	}
	return nil
}

// rematch re-enqueues every member of the event, or with ref "" (--all) of
// every enabled event, and wakes their workflows.
func (a *app) rematch(ctx context.Context, ref string, format outputFormat) error {
	s, err := a.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	var events []store.Event
	if ref == "" {
		if events, err = s.st.EnabledEvents(ctx); err != nil {
			return err
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
	res := rematchResult{Events: []rematchedEvent{}}
	for _, ev := range events {
		queued, err := s.st.EnqueueEvent(ctx, ev.ID, store.PriorityEventEnable)
		if err == nil {
			_, err = workflows.Wake(ctx, s.temporal, s.cfg.TaskQueue, eventRef(ev), settings)
		}
		if err != nil {
			// Say which events were queued before this one failed.
			if printErr := a.print(format, res); printErr != nil {
				return printErr
			}
			return fmt.Errorf("rematch %s: %w", ev.Code, err)
		}
		res.Events = append(res.Events, rematchedEvent{eventJSON: eventJSON{ID: ev.ID, Code: ev.Code}, Queued: queued})
	}
	return a.print(format, res)
}

// clearQueueResult is how many queued members clear-queue removed.
type clearQueueResult struct {
	Event   eventJSON `json:"event"`
	Removed int       `json:"removed"`
}

func (r clearQueueResult) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "removed %d queued members of %s\n", r.Removed, r.Event.Code)
	return err
}

func (a *app) clearQueue(ctx context.Context, ref string, yes bool, format outputFormat) error {
	s, ev, err := a.openEvent(ctx, ref, false)
	if err != nil {
		return err
	}
	defer s.close()
	if !yes {
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
	return a.print(format, clearQueueResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, Removed: n})
}

// retryResult is how many quarantined members retry-quarantined enqueued.
type retryResult struct {
	Event    eventJSON `json:"event"`
	Requeued int       `json:"requeued"`
}

func (r retryResult) writeText(w io.Writer) error {
	if r.Requeued == 0 {
		_, err := fmt.Fprintf(w, "event %s: no quarantined members\n", r.Event.Code)
		return err
	}
	_, err := fmt.Fprintf(w, "event %s: %s enqueued again\n", r.Event.Code, plural(r.Requeued, "quarantined member", "quarantined members"))
	return err
}

// retryQuarantined takes the event's quarantined members out of
// quarantine, enqueues them and wakes the event's workflow, as enable and
// rematch do, so they are matched at once.
func (a *app) retryQuarantined(ctx context.Context, ref string, format outputFormat) error {
	s, ev, err := a.openEvent(ctx, ref, true)
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
	if err := a.print(format, retryResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, Requeued: n}); err != nil || n == 0 {
		return err
	}
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
	// AIBackfill is where the event's AI insights stand; nil for an event
	// with no matches.
	AIBackfill *aiBackfillRow `json:"ai_backfill,omitempty"`
}

// aiBackfillRow is the event's AI backfill: the database's figures (all
// runs together), and the backfill workflow's phase and line when Temporal
// answers.
type aiBackfillRow struct {
	Matches          int `json:"matches"`
	AI               int `json:"ai"`
	Backlog          int `json:"backlog"`
	Refused          int `json:"refused"`
	Calls            int `json:"calls"`
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	Upgraded         int `json:"upgraded"`
	Fenced           int `json:"fenced"`
	// SpentUSD is what the event's calls cost at the price of this
	// starter's OPENAI_MODEL (AI_PRICES); SpendLimitUSD is its
	// AI_MAX_SPEND_USD_PER_EVENT.
	SpentUSD      float64 `json:"spent_usd"`
	SpendLimitUSD float64 `json:"spend_limit_usd,omitempty"`
	Workflow      string  `json:"workflow"`
	State         string  `json:"state"`
	Line          string  `json:"line"`

	// Rejections counts the model's answers rejected, by rule ("name",
	// "length", "json", ...; see README "AI insights"), all runs together.
	Rejections map[string]int `json:"rejections"`
}

type quarantinedRow struct {
	UserID        string    `json:"user_id"`
	DisplayName   string    `json:"display_name"`
	Reason        string    `json:"reason"`
	QuarantinedAt time.Time `json:"quarantined_at"`
}

// statusMembersShown is how many quarantined members `status <event>` lists.
const statusMembersShown = 10

// statusTemporalTimeout bounds status's attempt to reach Temporal: past
// it, status shows what the database knows rather than wait.
const statusTemporalTimeout = 3 * time.Second

// statusQueryAttempt bounds one status query, and statusQueryAttempts is how
// many status makes before it says no worker answered. One attempt is not
// enough: a query sent to a worker's sticky queue just after that worker
// went away waits the sticky schedule-to-start timeout (5 s) before the
// server sends it to the task queue, and now and then a live worker's answer
// comes back "query task not found, or already expired" and the query waits
// out its deadline. A second query reaches a running worker in milliseconds;
// an event with no worker at all costs two attempts.
const (
	statusQueryAttempt  = 5 * time.Second
	statusQueryAttempts = 2
)

// queryStatus runs a workflow's status query into result, asking again when
// an attempt times out or fails in transit. A workflow that is not there or
// whose handler refused is an answer, not a reason to ask again; nor is an
// answer that does not decode.
func queryStatus(ctx context.Context, c client.Client, workflowID string, result any) error {
	var answer converter.EncodedValue
	var err error
	for range statusQueryAttempts {
		answer, err = queryStatusOnce(ctx, c, workflowID)
		var notFound *serviceerror.NotFound
		var refused *serviceerror.QueryFailed
		if err == nil || errors.As(err, &notFound) || errors.As(err, &refused) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	return answer.Get(result)
}

func queryStatusOnce(ctx context.Context, c client.Client, workflowID string) (converter.EncodedValue, error) {
	ctx, cancel := context.WithTimeout(ctx, statusQueryAttempt)
	defer cancel()
	return c.QueryWorkflow(ctx, workflowID, "", workflows.QueryStatus)
}

// statusReport is `starter status`: whether Temporal answered, and the
// events.
type statusReport struct {
	Temporal temporalReach `json:"temporal"`
	Events   []statusRow   `json:"events"`
	// single: one event was asked for, so its details are listed.
	single bool
}

// temporalReach says whether status could ask Temporal for the workflows'
// own state; without it the events' state is unknown and the rest comes
// from the database alone.
type temporalReach struct {
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

func (r statusReport) writeText(w io.Writer) error {
	return writeStatus(w, r.Events, r.single, time.Now())
}

// status reads every event with matchmaking enabled or a queue, or the one
// named by ref, from the database, and each workflow's state from Temporal
// when it answers.
func (a *app) status(ctx context.Context, ref string, format outputFormat) error {
	s, err := a.openSession(ctx, false)
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
	report := statusReport{single: ref != ""}
	dialCtx, cancel := context.WithTimeout(ctx, statusTemporalTimeout)
	s.temporal, err = connect.Temporal(dialCtx, s.cfg, nil, workflows.SearchAttributes)
	cancel()
	switch {
	case err == nil:
		report.Temporal.Reachable = true
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		report.Temporal.Error = cli.OneLine(err.Error())
		fmt.Fprintf(a.stderr, "starter: %s; showing what the database knows (the workflows' state is unknown)\n", report.Temporal.Error)
	}
	statuses, err := s.st.EventStatuses(ctx, eventID)
	if err != nil {
		return quarantineSchemaHint(err)
	}
	report.Events = make([]statusRow, 0, len(statuses))
	for _, st := range statuses {
		row := s.statusRow(ctx, st)
		row.Quarantined = st.Quarantined
		if row.AIBackfill, err = s.backfillRow(ctx, st.ID); err != nil {
			return err
		}
		if ref != "" && st.Quarantined > 0 {
			quarantined, err := s.st.QuarantinedMembers(ctx, st.ID)
			if err != nil {
				return err
			}
			for _, m := range quarantined[:min(len(quarantined), statusMembersShown)] {
				row.QuarantinedMembers = append(row.QuarantinedMembers, quarantinedRow(m))
			}
		}
		report.Events = append(report.Events, row)
	}
	return a.print(format, report)
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
		if b := r.AIBackfill; b != nil && (b.Calls > 0 || b.Backlog > 0) {
			details = append(details, fmt.Sprintf("%sAI backfill (%s): %s", prefix, b.State, clip(b.Line, 300)))
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
// workflow that is not running is said so, not treated as an error, and
// without Temporal (s.temporal nil) the state is unknown.
func (s *session) statusRow(ctx context.Context, st store.EventStatus) statusRow {
	row := statusRow{
		EventID: st.ID, Code: st.Code, Name: st.Name, Enabled: st.MatchmakingEnabled,
		Workflow: workflows.WorkflowID(st.ID), Members: st.Members, UsersMatched: st.MembersMatched,
		Queue: st.QueueSize(), QueueByPriority: st.Queued, InProgress: st.InProgress,
		OldestWaiting: st.OldestWaiting, LastBatchAt: st.LastBatchAt, Errors: st.FailedBatches24h,
		AIInsights: st.AIInsights, FallbackInsights: st.FallbackInsights,
	}
	if s.temporal == nil {
		row.State = "unknown (Temporal unreachable)"
		return row
	}
	desc, err := s.temporal.DescribeWorkflow(ctx, row.Workflow, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		row.State = "workflow not running"
		return row
	case err != nil:
		row.State = "unknown: " + cli.OneLine(err.Error())
		return row
	}
	if status := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus(); status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		row.State = "workflow " + strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_"))
		return row
	}
	var wf workflows.Status
	if err := queryStatus(ctx, s.temporal, row.Workflow, &wf); err != nil {
		row.State = "running (no worker answered the status query)"
		return row
	}
	row.State = string(wf.Phase)
	row.Errors = max(row.Errors, wf.Errors)
	row.LastError = wf.LastError
	row.ListsDeferred = wf.ListsDeferred
	return row
}

// backfillRow reads the event's AI backfill from the database, and its
// workflow's phase and status line from Temporal when it answers.
func (s *session) backfillRow(ctx context.Context, eventID string) (*aiBackfillRow, error) {
	p, err := s.st.BackfillProgress(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if p.Matches == 0 {
		return nil, nil
	}
	row := &aiBackfillRow{
		Matches: p.Matches, AI: p.AI, Backlog: p.Backlog, Refused: p.Refused, Calls: p.Calls,
		PromptTokens: p.PromptTokens, CompletionTokens: p.CompletionTokens, Upgraded: p.Upgraded, Fenced: p.Fenced,
		Workflow: workflows.BackfillWorkflowID(eventID),
		State:    "unknown (Temporal unreachable)",
		Line:     p.Summary(),
	}
	row.Rejections = make(map[string]int, len(p.Rejections))
	for _, c := range p.Rejections {
		row.Rejections[c.Rule] = c.Answers
	}
	if price, ok := s.cfg.ModelPrice(); ok {
		row.SpentUSD, row.SpendLimitUSD = price.Cost(p.PromptTokens, p.CompletionTokens), s.cfg.AIMaxSpendUSDPerEvent
		row.Line += fmt.Sprintf(", $%.2f spent", row.SpentUSD)
	}
	if s.temporal == nil {
		return row, nil
	}
	var wf workflows.BackfillStatus
	err = queryStatus(ctx, s.temporal, row.Workflow, &wf)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		row.State = "not running"
	case err != nil:
		row.State = "no worker answered the status query"
	default:
		row.State, row.Line = string(wf.Phase), wf.Line
	}
	return row, nil
}
