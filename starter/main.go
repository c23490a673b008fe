// Command starter is the operator's tool: it applies the schema, turns
// matchmaking on for an event (starting or waking its workflow), and loads
// and shows the demo event.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/eventmatch/matchmaker/internal/buildinfo"
	"github.com/eventmatch/matchmaker/workflows"
)

const usage = `usage: starter <command> [arguments]
       starter --version

commands:
  migrate [--create-database]       apply the schema over DATABASE_LISTEN_URL (default DATABASE_URL;
                                    a direct or session connection, as the role that will own it)
  grant-worker <role>               give an existing role exactly what the worker needs (run as
                                    the role that migrated) and print what it may do
  enable <event code or uuid> [--wait [--timeout 30m]] [--rematch]
                                    turn matchmaking on and start or wake the event's workflow;
                                    --wait shows progress until the queue is drained, giving up
                                    after --timeout (1s to 24h);
                                    --rematch re-enqueues every member of an enabled event
  disable <event>                   matchmaking off; the workflow finishes, matches are kept
  pause <event> | --all             stop claiming (returns once the workflow has taken it)
  resume <event> | --all            claim again
  rematch <event> | --all           re-match every member (enabled events only)
  retry-quarantined <event>         enqueue the event's quarantined members again and wake its workflow
  clear-queue <event> --yes         remove every queued member of the event
  status [event] [--json]           queue, progress, errors, quarantined members and insights per event
  load-demo [--code demo] [--members 300] [--seed 1]
                                    create the demo event with synthetic attendees; --code is at most
                                    64 letters, digits, '-', '_' or '.'; --members 1 to 1000000
  matches <event code or uuid> [--members 5]
                                    print some members' matches (--members 1 to 1000) with their insights

configuration comes from the environment: DATABASE_URL, DATABASE_LISTEN_URL,
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
TEMPORAL_PROFILE, TEMPORAL_TASK_QUEUE, BATCH_SIZE, MAX_RUNTIME_MS, TOP_N
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "starter:", oneLine(err))
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if cmd == "--version" || cmd == "version" {
		fmt.Fprintln(out, buildinfo.String("starter"))
		return nil
	}
	err := dispatch(ctx, cmd, rest, out)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(out, usage)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, cmd string, rest []string, out io.Writer) error {
	switch cmd {
	case "migrate":
		return cmdMigrate(ctx, rest, out)
	case "grant-worker":
		return cmdGrantWorker(ctx, rest, out)
	case "enable":
		return cmdEnable(ctx, rest, out)
	case "pause":
		return cmdPauseResume(ctx, cmd, workflows.UpdatePause, rest, out)
	case "resume":
		return cmdPauseResume(ctx, cmd, workflows.UpdateResume, rest, out)
	case "disable":
		return cmdDisable(ctx, rest, out)
	case "rematch":
		return cmdRematch(ctx, rest, out)
	case "retry-quarantined":
		return cmdRetryQuarantined(ctx, rest, out)
	case "clear-queue":
		return cmdClearQueue(ctx, rest, out)
	case "status":
		return cmdStatus(ctx, rest, out)
	case "load-demo":
		return cmdLoadDemo(ctx, rest, out)
	case "matches":
		return cmdMatches(ctx, rest, out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	default:
		fmt.Fprintf(os.Stderr, "starter: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

var whitespace = regexp.MustCompile(`\s+`)

// oneLine keeps an error on one line: operators read it, scripts grep it.
func oneLine(err error) string {
	return strings.TrimSpace(whitespace.ReplaceAllString(err.Error(), " "))
}
