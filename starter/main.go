// Command starter is the operator's tool: it applies the schema, turns
// matchmaking on for an event (starting or waking its workflow), and loads
// and shows the demo event.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/cli"
	"github.com/eventmatch/matchmaker/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs the starter with args and returns its exit code: 0, 1 for a
// runtime failure, 2 for a usage error (see cli.Execute).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Execute(ctx, newRootCommand(&app{stdout: stdout, stderr: stderr}), args, stdout, stderr)
}

// app is what every command shares: where it writes, and the connection
// settings given on the command line.
type app struct {
	// stdout takes a command's result only, one JSON document with
	// --output json; progress and warnings go to stderr.
	stdout, stderr io.Writer
	overrides      config.Overrides
}

// loadConfig reads the environment with the command line's overrides.
func (a *app) loadConfig() (config.Config, error) { return config.LoadWith(a.overrides) }

const rootLong = `starter is the operator's tool of the matchmaking engine: it applies the
schema, turns matchmaking on and off for an event (starting or waking its
Temporal workflow), pauses, resumes and re-matches events, shows their
status, clears the cache of AI insights, and loads a demo event.

Every event argument is an event code or UUID. Bad input is refused before
anything is connected, so a refused command changes nothing.

Exit status: 0 done, 1 failed (the database or Temporal unreachable, an
unknown event, ...), 2 usage error (unknown command or flag, a missing,
extra or bad argument). Errors are one line on stderr, "starter: ...".

Configuration comes from the environment: DATABASE_URL, DATABASE_LISTEN_URL,
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
TEMPORAL_PROFILE, TEMPORAL_TASK_QUEUE, BATCH_SIZE, MAX_RUNTIME_MS, TOP_N
(see the Configuration table of README.md). --database-url, --address,
--namespace and --task-queue override their variables for one command.`

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "starter",
		Short: "The operator's tool of the matchmaking engine",
		Long:  rootLong,
	}
	cli.AddVersion(root, "starter")
	cli.AddConnectionFlags(root.PersistentFlags(), &a.overrides)
	root.AddCommand(
		a.migrateCommand(),
		a.grantWorkerCommand(),
		a.enableCommand(),
		a.disableCommand(),
		a.pauseResumeCommand("pause", workflows.UpdatePause, "Stop claiming; returns once the workflow has taken it"),
		a.pauseResumeCommand("resume", workflows.UpdateResume, "Claim again; returns once the workflow has taken it"),
		a.rematchCommand(),
		a.retryQuarantinedCommand(),
		a.clearQueueCommand(),
		a.statusCommand(),
		a.loadDemoCommand(),
		a.matchesCommand(),
		a.aiCacheCommand(),
	)
	return root
}

// withOutput gives cmd, a command that prints a result, --output, and runs
// it with run.
func withOutput(cmd *cobra.Command, run func(ctx context.Context, args []string, f outputFormat) error) *cobra.Command {
	f := outputText
	cmd.Flags().VarP(&f, "output", "o", "print the result as text or json (one JSON document on stdout)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args, f) }
	return cmd
}

func (a *app) migrateCommand() *cobra.Command {
	var createDB bool
	cmd := withOutput(&cobra.Command{
		Use:   "migrate",
		Short: "Apply the schema over DATABASE_LISTEN_URL (default DATABASE_URL)",
		Long: `Apply the schema over DATABASE_LISTEN_URL (default DATABASE_URL): a direct
or session connection, as the role that will own the tables. Safe to run
again and concurrently.`,
		Args: noArguments(""),
	}, func(ctx context.Context, _ []string, f outputFormat) error {
		return a.migrate(ctx, createDB, f)
	})
	cmd.Flags().BoolVar(&createDB, "create-database", false, "create the database named in the URL if it does not exist")
	return cmd
}

func (a *app) grantWorkerCommand() *cobra.Command {
	return withOutput(&cobra.Command{
		Use:   "grant-worker <role>",
		Short: "Give an existing role exactly what the worker needs, and print what it may do",
		Long: `Give an existing role exactly what the worker needs, and print what it may
do afterwards. Run it as the role that migrated, over DATABASE_LISTEN_URL
(default DATABASE_URL).`,
		Args: oneRole,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.grantWorker(ctx, args[0], f)
	})
}

func (a *app) enableCommand() *cobra.Command {
	var o enableOptions
	cmd := withOutput(&cobra.Command{
		Use:   "enable <event>",
		Short: "Turn matchmaking on and start or wake the event's workflow",
		Long: `Turn matchmaking on for an event and start or wake its workflow.

--wait shows progress on stderr until the event's queue is drained, then
prints the result; it gives up after --timeout (1s to 24h), leaving
matchmaking enabled. --rematch re-enqueues every member even if the event
is already enabled.`,
		Args: oneEvent,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("timeout") && !o.wait {
				return cli.Usagef("--timeout applies only with --wait")
			}
			return nil
		},
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.enable(ctx, args[0], o, f)
	})
	cmd.Flags().BoolVar(&o.wait, "wait", false, "show progress until the event's queue is drained")
	cmd.Flags().Var(newDurationBetween(&o.timeout, 30*time.Minute, minWaitTimeout, maxWaitTimeout), "timeout",
		"with --wait: give up after this long (1s to 24h)")
	cmd.Flags().BoolVar(&o.rematch, "rematch", false, "re-enqueue every member even if the event is already enabled")
	return cmd
}

func (a *app) disableCommand() *cobra.Command {
	return withOutput(&cobra.Command{
		Use:   "disable <event>",
		Short: "Matchmaking off: the queue is dropped, the workflow finishes, matches are kept",
		Args:  oneEvent,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.disable(ctx, args[0], f)
	})
}

func (a *app) pauseResumeCommand(name, update, short string) *cobra.Command {
	var all bool
	cmd := withOutput(&cobra.Command{
		Use:   name + " <event> | --all",
		Short: short,
		Args:  eventOrAll(&all),
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.pauseResume(ctx, update, eventArg(args), f)
	})
	cmd.Flags().BoolVar(&all, "all", false, "every running matchmaking workflow of the task queue")
	return cmd
}

func (a *app) rematchCommand() *cobra.Command {
	var all bool
	cmd := withOutput(&cobra.Command{
		Use:   "rematch <event> | --all",
		Short: "Re-match every member (enabled events only)",
		Args:  eventOrAll(&all),
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.rematch(ctx, eventArg(args), f)
	})
	cmd.Flags().BoolVar(&all, "all", false, "every event with matchmaking enabled")
	return cmd
}

func (a *app) retryQuarantinedCommand() *cobra.Command {
	return withOutput(&cobra.Command{
		Use:   "retry-quarantined <event>",
		Short: "Enqueue the event's quarantined members again and wake its workflow",
		Args:  oneEvent,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.retryQuarantined(ctx, args[0], f)
	})
}

func (a *app) clearQueueCommand() *cobra.Command {
	var yes bool
	cmd := withOutput(&cobra.Command{
		Use:   "clear-queue <event> --yes",
		Short: "Remove every queued member of the event",
		Args:  oneEvent,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.clearQueue(ctx, args[0], yes, f)
	})
	cmd.Flags().BoolVar(&yes, "yes", false, "really remove every queued member")
	return cmd
}

func (a *app) statusCommand() *cobra.Command {
	return withOutput(&cobra.Command{
		Use:   "status [event]",
		Short: "Queue, progress, errors, quarantined members and insights per event",
		Long: `Queue, progress, errors, quarantined members and insights per event: every
event with matchmaking enabled or a queue, or the one named (with its
quarantined members).

When Temporal does not answer within a few seconds, status shows what the
database knows, says so (a line on stderr; "temporal": {"reachable": false}
in JSON) and still exits 0.`,
		Args: atMostOneEvent,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.status(ctx, eventArg(args), f)
	})
}

func (a *app) loadDemoCommand() *cobra.Command {
	var (
		code    string
		members int
		seed    int64
	)
	cmd := withOutput(&cobra.Command{
		Use:   "load-demo",
		Short: "Create the demo event with synthetic attendees",
		Long: `Create the demo event with synthetic attendees. --code is at most 64
letters, digits, '-', '_' or '.', and not UUID-shaped; --members is 1 to
1000000. Attendees already there are kept.`,
		Args: noArguments(" (the event code is --code)"),
		PreRunE: func(*cobra.Command, []string) error {
			if err := checkNewEventCode(code); err != nil {
				return &cli.UsageError{Err: err}
			}
			return nil
		},
	}, func(ctx context.Context, _ []string, f outputFormat) error {
		return a.loadDemo(ctx, code, members, seed, f)
	})
	cmd.Flags().StringVar(&code, "code", "demo", "event code")
	cmd.Flags().Var(newIntBetween(&members, 300, 1, 1_000_000), "members", "number of synthetic attendees (1 to 1000000)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "generator seed")
	return cmd
}

func (a *app) matchesCommand() *cobra.Command {
	var members int
	cmd := withOutput(&cobra.Command{
		Use:   "matches <event>",
		Short: "Print some members' matches with their insights",
		Args:  oneEvent,
	}, func(ctx context.Context, args []string, f outputFormat) error {
		return a.matches(ctx, args[0], members, f)
	})
	cmd.Flags().Var(newIntBetween(&members, 5, 1, 1000), "members", "how many members' lists to show (1 to 1000)")
	return cmd
}

// eventArg is the optional event argument of a command that also takes
// --all or nothing: "" when none was given.
func eventArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
