// Package cli is what the command lines of the worker and the starter
// share: one way to run a cobra command tree that maps errors to exit codes
// by their type, --version, and the flags that override the environment's
// connection settings.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/buildinfo"
)

// Exit codes: scripts tell a command used wrongly from one that failed.
const (
	ExitOK      = 0
	ExitFailure = 1 // a runtime failure: the database, Temporal, an event not found
	ExitUsage   = 2 // a usage error: unknown command or flag, a missing, extra or bad argument
)

// UsageError is an error in how a command was called. Execute prints it with
// the command's usage and exits ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError ends a command with Code after the command has already said
// why on its own (as `worker healthcheck` does); Execute prints nothing
// more.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Execute runs root with args and returns the exit code: ExitOK, ExitUsage
// for a UsageError (one line "<root>: <error>" on stderr, then the usage of
// the command that was called), the code of an ExitError, and ExitFailure
// for any other error (one line on stderr). Help goes to stdout.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceErrors, root.SilenceUsage = true, true
	// cobra's own errors (unknown flags and commands, argument counts) are
	// plain errors; these hooks give them their type where they arise.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	if root.Args == nil {
		// Without Args cobra reports an unknown command before it knows
		// which command it has, as an untyped error.
		root.Args = cobra.NoArgs
	}
	if !root.Runnable() {
		// cobra answers a root that cannot run with its help and exit 0,
		// even when the command named is unknown.
		root.RunE = func(*cobra.Command, []string) error { return Usagef("missing command") }
	}
	typeArgErrors(root)

	cmd, err := root.ExecuteContextC(ctx)
	var usage *UsageError
	var exit *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exit):
		return exit.Code
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %s\n\n", root.Name(), OneLine(err.Error()))
		if cmd == nil {
			cmd = root
		}
		fmt.Fprint(stderr, cmd.UsageString())
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", root.Name(), OneLine(err.Error()))
		return ExitFailure
	}
}

// typeArgErrors makes every argument check in the tree return a UsageError.
func typeArgErrors(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &UsageError{Err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typeArgErrors(sub)
	}
}

var whitespace = regexp.MustCompile(`\s+`)

// OneLine keeps a message on one line: operators read it, scripts grep it.
func OneLine(s string) string {
	return strings.TrimSpace(whitespace.ReplaceAllString(s, " "))
}

// AddVersion gives root --version (-v) and a version command, both printing
// the build: the module's version and the VCS revision.
func AddVersion(root *cobra.Command, binary string) {
	root.Version = buildinfo.String(binary)
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the build: module version and VCS revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), root.Version)
			return err
		},
	})
}

// AddConnectionFlags adds to fs the flags that override the environment's
// connection settings, as the temporal CLI's do, into o; config.LoadWith
// applies them. A blank value is refused as a usage error.
func AddConnectionFlags(fs *pflag.FlagSet, o *config.Overrides) {
	fs.Var(&nonBlank{p: &o.DatabaseURL, kind: "url"}, "database-url",
		"PostgreSQL URL for every connection (overrides DATABASE_URL and DATABASE_LISTEN_URL)")
	fs.Var(&nonBlank{p: &o.TemporalAddress, kind: "host:port"}, "address",
		"Temporal frontend (overrides TEMPORAL_ADDRESS and the Temporal profile's address)")
	fs.VarP(&nonBlank{p: &o.TemporalNamespace, kind: "name"}, "namespace", "n",
		"Temporal namespace (overrides TEMPORAL_NAMESPACE and the Temporal profile's namespace)")
	fs.Var(&nonBlank{p: &o.TaskQueue, kind: "name"}, "task-queue",
		"Temporal task queue (overrides TEMPORAL_TASK_QUEUE)")
}

// nonBlank is a string flag that must not be empty or only whitespace:
// an empty override would otherwise silently leave the environment's value.
type nonBlank struct {
	p    *string
	kind string
}

func (v *nonBlank) String() string { return *v.p }
func (v *nonBlank) Type() string   { return v.kind }

func (v *nonBlank) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty or blank")
	}
	*v.p = s
	return nil
}
