package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/migrations"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// migrateResult is what migrate did.
type migrateResult struct {
	CreatedDatabase bool  `json:"created_database"`
	FromVersion     int32 `json:"from_version"`
	ToVersion       int32 `json:"to_version"`
}

func (r migrateResult) writeText(w io.Writer) error {
	if r.CreatedDatabase {
		fmt.Fprintln(w, "created database")
	}
	if r.FromVersion == r.ToVersion {
		_, err := fmt.Fprintf(w, "schema is up to date (version %d)\n", r.ToVersion)
		return err
	}
	_, err := fmt.Fprintf(w, "migrated schema from version %d to %d\n", r.FromVersion, r.ToVersion)
	return err
}

func (a *app) migrate(ctx context.Context, createDB bool, format outputFormat) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	// tern holds a session advisory lock for the whole migration, which a
	// transaction-mode pooler cannot keep: migrate over a session.
	pooler, err := store.DetectPooler(cfg.ListenURL())
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.ListenVar(), err)
	}
	if pooler.Transaction {
		return fmt.Errorf("%s goes through a transaction-mode pooler (%s), and migrate needs a session of its own: "+
			"set DATABASE_LISTEN_URL to a direct connection or a session-mode pooler", cfg.ListenVar(), pooler.Reason)
	}
	var res migrateResult
	if createDB {
		if res.CreatedDatabase, err = createDatabase(ctx, cfg.ListenVar(), cfg.ListenURL()); err != nil {
			return err
		}
	}
	if err := withOwnerSession(ctx, cfg, func(conn *pgx.Conn) (err error) {
		res.FromVersion, res.ToVersion, err = migrations.Apply(ctx, conn)
		return err
	}); err != nil {
		return err
	}
	return a.print(format, res)
}

// withOwnerSession runs fn on one session over DATABASE_LISTEN_URL (else
// DATABASE_URL), the connection of migrate and grant-worker: a session of
// its own (tern's advisory lock lasts the whole migration), as the role
// that owns the engine's tables.
func withOwnerSession(ctx context.Context, cfg config.Config, fn func(*pgx.Conn) error) error {
	pool, err := store.ConnectEnv(ctx, cfg.ListenVar(), cfg.ListenURL(), "matchmaker-starter")
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	return fn(conn.Conn())
}

var safeDatabaseName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// createDatabase connects to the server's postgres database and creates the
// one the URL (read from variable) names, if missing.
func createDatabase(ctx context.Context, variable, databaseURL string) (bool, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return false, fmt.Errorf("%s is not a valid PostgreSQL URL", variable)
	}
	delete(cfg.RuntimeParams, "pgbouncer") // ours, not the server's
	name := cfg.Database
	if !safeDatabaseName.MatchString(name) {
		return false, fmt.Errorf("will not create database %q: only letters, digits and _ are allowed", name)
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("database server unreachable at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

// findEvent resolves an event code or UUID with the errors operators need.
func findEvent(ctx context.Context, st *store.Store, ref string) (store.Event, error) {
	ref, err := checkEventRef(ref)
	if err != nil {
		return store.Event{}, err
	}
	ev, err := st.FindEvent(ctx, ref)
	if store.IsUndefinedTable(err) {
		return store.Event{}, errors.New("the database has no matchmaking schema; run `starter migrate` first")
	}
	return ev, err
}

// enableOptions are enable's flags.
type enableOptions struct {
	wait    bool
	timeout time.Duration
	rematch bool
}

// eventJSON names an event in a command's JSON result.
type eventJSON struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// enableResult is what enable did, and with --wait how the queue drained.
type enableResult struct {
	Event      eventJSON    `json:"event"`
	Queued     int          `json:"queued"`
	WorkflowID string       `json:"workflow_id"`
	RunID      string       `json:"run_id"`
	Drained    *drainResult `json:"drained,omitempty"`
}

func (r enableResult) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "matchmaking enabled for %s (%s): %d members queued; workflow %s run %s\n",
		r.Event.Code, r.Event.ID, r.Queued, r.WorkflowID, r.RunID)
	return err
}

// drainResult is the event once its queue drained.
type drainResult struct {
	Seconds        float64 `json:"seconds"`
	Members        int     `json:"members"`
	MembersMatched int     `json:"members_matched"`
	MatchRows      int     `json:"match_rows"`
}

func (r drainResult) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "done in %.1fs: %d of %d members have matches (%d match rows)\n",
		r.Seconds, r.MembersMatched, r.Members, r.MatchRows)
	return err
}

func (a *app) enable(ctx context.Context, ref string, o enableOptions, format outputFormat) error {
	s, ev, err := a.openEvent(ctx, ref, true)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st

	queued, err := st.EnableEvent(ctx, ev.ID)
	if err != nil {
		return err
	}
	if o.rematch {
		if queued, err = st.EnqueueEvent(ctx, ev.ID, store.PriorityEventEnable); err != nil {
			return err
		}
	}
	runID, err := workflows.Wake(ctx, s.temporal, s.cfg.TaskQueue, eventRef(ev), workflows.NewSettings(s.cfg.BatchSize, s.cfg.MaxRuntime(), s.cfg.IdlePoll))
	if err != nil {
		return err
	}
	res := enableResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, Queued: queued,
		WorkflowID: workflows.WorkflowID(ev.ID), RunID: runID}
	if !o.wait {
		return a.print(format, res)
	}
	// As text, say at once that matchmaking is on: the wait may be long.
	if format == outputText {
		if err := res.writeText(a.stdout); err != nil {
			return err
		}
	}
	drained, err := waitForDrain(ctx, st, ev, o.timeout, a.stderr)
	if err != nil {
		return err
	}
	if format == outputText {
		return drained.writeText(a.stdout)
	}
	res.Drained = &drained
	return a.print(format, res)
}

// The bounds of enable --timeout.
const (
	minWaitTimeout = time.Second
	maxWaitTimeout = 24 * time.Hour
)

// waitForDrain polls the event until its queue is empty, writing its
// progress to progress.
func waitForDrain(ctx context.Context, st *store.Store, ev store.Event, timeout time.Duration, progress io.Writer) (drainResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	lastQueued, lastChange := -1, time.Now()
	warned := false
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Time{}
	for {
		c, err := st.MatchCounts(ctx, ev.ID)
		if err != nil {
			if ctx.Err() != nil {
				return drainResult{}, gaveUp(ctx, timeout, ev.Code, lastQueued)
			}
			return drainResult{}, err
		}
		if c.Queued == 0 {
			return drainResult{Seconds: time.Since(start).Seconds(), Members: c.Members,
				MembersMatched: c.MembersMatched, MatchRows: c.Rows}, nil
		}
		if c.Queued != lastQueued {
			lastQueued, lastChange = c.Queued, time.Now()
		}
		if time.Since(lastPrint) >= time.Second {
			fmt.Fprintf(progress, "  %5.1fs  queue %d, %d of %d members matched\n",
				time.Since(start).Seconds(), c.Queued, c.MembersMatched, c.Members)
			lastPrint = time.Now()
		}
		if !warned && time.Since(lastChange) > 20*time.Second {
			fmt.Fprintln(progress, "  no progress for 20s: is a worker running on this task queue? (make worker, or bin/worker)")
			warned = true
		}
		select {
		case <-ctx.Done():
			return drainResult{}, gaveUp(ctx, timeout, ev.Code, lastQueued)
		case <-tick.C:
		}
	}
}

// gaveUp says why waitForDrain stopped; lastQueued is -1 when the queue
// was never read.
func gaveUp(ctx context.Context, timeout time.Duration, code string, lastQueued int) error {
	why := "gave up after " + fmtDuration(timeout)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = "interrupted"
	}
	if lastQueued < 0 {
		return fmt.Errorf("%s before the queue of %s could be read; matchmaking stays enabled", why, code)
	}
	return fmt.Errorf("%s: the queue of %s still has %d members; matchmaking stays enabled", why, code, lastQueued)
}

// loadDemoResult is the demo event and how many attendees load-demo added.
type loadDemoResult struct {
	Event        eventJSON `json:"event"`
	Added        int       `json:"added"`
	AlreadyThere int       `json:"already_there"`
}

func (r loadDemoResult) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "event %s (%s): %d attendees added, %d were already there\n",
		r.Event.Code, r.Event.ID, r.Added, r.AlreadyThere)
	return err
}

func (a *app) loadDemo(ctx context.Context, code string, members int, seed int64, format outputFormat) error {
	s, err := a.openSession(ctx, false)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st
	ev, err := st.EnsureEvent(ctx, code, "Demo networking night")
	if err != nil {
		return err
	}
	inserted, err := st.InsertMembers(ctx, ev.ID, demodata.Generate(seed, members))
	if err != nil {
		return err
	}
	return a.print(format, loadDemoResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, Added: inserted, AlreadyThere: members - inserted})
}

// matchesResult is some members' lists of an event.
type matchesResult struct {
	Event          eventJSON   `json:"event"`
	Name           string      `json:"name"`
	Members        int         `json:"members"`
	MembersMatched int         `json:"members_matched"`
	Queued         int         `json:"queued"`
	Matches        []matchJSON `json:"matches"`
}

// matchJSON is one line of a member's list.
type matchJSON struct {
	Member        string  `json:"member"`
	Rank          int     `json:"rank"`
	Meet          string  `json:"meet"`
	MeetTitle     string  `json:"meet_title,omitempty"`
	Score         float32 `json:"score"`
	InsightSource string  `json:"insight_source"`
	Insight       string  `json:"insight"`
}

func (r matchesResult) writeText(w io.Writer) error {
	fmt.Fprintf(w, "%s — %d of %d members matched, %d still queued\n\n",
		r.Name, r.MembersMatched, r.Members, r.Queued)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\t#\tMEET\tSCORE\tSOURCE\tINSIGHT")
	prev := ""
	for _, m := range r.Matches {
		name := m.Member
		if name == prev {
			name = ""
		}
		prev = m.Member
		meet := m.Meet
		if m.MeetTitle != "" {
			meet += " (" + m.MeetTitle + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%s\t%s\n", name, m.Rank, meet, m.Score, m.InsightSource, m.Insight)
	}
	return tw.Flush()
}

func (a *app) matches(ctx context.Context, ref string, members int, format outputFormat) error {
	s, ev, err := a.openEvent(ctx, ref, false)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st
	counts, err := st.MatchCounts(ctx, ev.ID)
	if err != nil {
		return err
	}
	views, err := st.SampleMatches(ctx, ev.ID, members)
	if err != nil {
		return err
	}
	res := matchesResult{Event: eventJSON{ID: ev.ID, Code: ev.Code}, Name: ev.Name, Members: counts.Members,
		MembersMatched: counts.MembersMatched, Queued: counts.Queued, Matches: make([]matchJSON, 0, len(views))}
	for _, v := range views {
		res.Matches = append(res.Matches, matchJSON{Member: v.UserName, Rank: v.Rank, Meet: v.MatchedName,
			MeetTitle: v.MatchedTitle, Score: v.Score, InsightSource: v.InsightSource, Insight: v.Insight})
	}
	return a.print(format, res)
}
