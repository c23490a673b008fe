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

func cmdMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("migrate")
	createDB := fs.Bool("create-database", false, "create the database named in DATABASE_URL if it does not exist")
	positional, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArguments("migrate", positional, ""); err != nil {
		return err
	}
	cfg, err := config.Load()
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
	if *createDB {
		created, err := createDatabase(ctx, cfg.ListenVar(), cfg.ListenURL())
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintln(out, "created database")
		}
	}
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
	from, to, err := migrations.Apply(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(out, "schema is up to date (version %d)\n", to)
	} else {
		fmt.Fprintf(out, "migrated schema from version %d to %d\n", from, to)
	}
	return nil
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

func cmdEnable(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("enable")
	wait := fs.Bool("wait", false, "show progress until the event's queue is drained")
	timeout := fs.durationBetween("timeout", 30*time.Minute, minWaitTimeout, maxWaitTimeout, "with --wait: give up after this long")
	rematch := fs.Bool("rematch", false, "re-enqueue every member even if the event is already enabled")
	fs.check(func() error {
		if fs.isSet("timeout") && !*wait {
			return errors.New("--timeout applies only with --wait")
		}
		return nil
	})
	s, ev, err := openEvent(ctx, fs, args, true)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st

	queued, err := st.EnableEvent(ctx, ev.ID)
	if err != nil {
		return err
	}
	if *rematch {
		if queued, err = st.EnqueueEvent(ctx, ev.ID, store.PriorityEventEnable); err != nil {
			return err
		}
	}
	runID, err := workflows.Wake(ctx, s.temporal, s.cfg.TaskQueue, eventRef(ev), workflows.NewSettings(s.cfg.BatchSize, s.cfg.MaxRuntime(), s.cfg.IdlePoll))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "matchmaking enabled for %s (%s): %d members queued; workflow %s run %s\n",
		ev.Code, ev.ID, queued, workflows.WorkflowID(ev.ID), runID)
	if !*wait {
		return nil
	}
	return waitForDrain(ctx, st, ev, *timeout, out)
}

// The bounds of enable --timeout.
const (
	minWaitTimeout = time.Second
	maxWaitTimeout = 24 * time.Hour
)

// waitForDrain polls the event until its queue is empty.
func waitForDrain(ctx context.Context, st *store.Store, ev store.Event, timeout time.Duration, out io.Writer) error {
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
				return gaveUp(ctx, timeout, ev.Code, lastQueued)
			}
			return err
		}
		if c.Queued == 0 {
			fmt.Fprintf(out, "done in %.1fs: %d of %d members have matches (%d match rows)\n",
				time.Since(start).Seconds(), c.MembersMatched, c.Members, c.Rows)
			return nil
		}
		if c.Queued != lastQueued {
			lastQueued, lastChange = c.Queued, time.Now()
		}
		if time.Since(lastPrint) >= time.Second {
			fmt.Fprintf(out, "  %5.1fs  queue %d, %d of %d members matched\n",
				time.Since(start).Seconds(), c.Queued, c.MembersMatched, c.Members)
			lastPrint = time.Now()
		}
		if !warned && time.Since(lastChange) > 20*time.Second {
			fmt.Fprintln(out, "  no progress for 20s: is a worker running on this task queue? (make worker, or bin/worker)")
			warned = true
		}
		select {
		case <-ctx.Done():
			return gaveUp(ctx, timeout, ev.Code, lastQueued)
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

func cmdLoadDemo(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("load-demo")
	code := fs.String("code", "demo", "event code")
	members := fs.intBetween("members", 300, 1, 1_000_000, "number of synthetic attendees")
	seed := fs.int64Any("seed", 1, "generator seed")
	fs.check(func() error { return checkNewEventCode(*code) })
	positional, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArguments("load-demo", positional, " (the event code is --code)"); err != nil {
		return err
	}
	s, err := openSession(ctx, false)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st
	ev, err := st.EnsureEvent(ctx, *code, "Demo networking night")
	if err != nil {
		return err
	}
	inserted, err := st.InsertMembers(ctx, ev.ID, demodata.Generate(*seed, *members))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "event %s (%s): %d attendees added, %d were already there\n",
		ev.Code, ev.ID, inserted, *members-inserted)
	return nil
}

func cmdMatches(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("matches")
	members := fs.intBetween("members", 5, 1, 1000, "how many members' lists to show")
	s, ev, err := openEvent(ctx, fs, args, false)
	if err != nil {
		return err
	}
	defer s.close()
	st := s.st
	counts, err := st.MatchCounts(ctx, ev.ID)
	if err != nil {
		return err
	}
	views, err := st.SampleMatches(ctx, ev.ID, *members)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s — %d of %d members matched, %d still queued\n\n",
		ev.Name, counts.MembersMatched, counts.Members, counts.Queued)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\t#\tMEET\tSCORE\tSOURCE\tINSIGHT")
	prev := ""
	for _, v := range views {
		name := v.UserName
		if name == prev {
			name = ""
		}
		prev = v.UserName
		meet := v.MatchedName
		if v.MatchedTitle != "" {
			meet += " (" + v.MatchedTitle + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%s\t%s\n", name, v.Rank, meet, v.Score, v.InsightSource, v.Insight)
	}
	return tw.Flush()
}
