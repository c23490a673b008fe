// Package clitest checks a binary's command line the same way for the
// worker and the starter: exit code, what stdout holds, and stderr's one
// line (followed by the usage for a usage error, by nothing for a runtime
// failure).
package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/internal/cli"
)

// Case is one command line and what it must do.
type Case struct {
	Args       []string
	Code       int
	Stdout     string // what stdout contains; "" for nothing at all
	StderrLine string // stderr's first line starts with it; "" for nothing at all
}

// Execute runs a binary's command line in-process and returns its exit code.
type Execute func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run checks every case against execute, one subtest each; binary is the
// command's name, as its usage prints it.
func Run(t *testing.T, binary string, execute Execute, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.Args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), tc.Args, &stdout, &stderr)
			if code != tc.Code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.Code, stdout.String(), stderr.String())
			}
			if tc.Stdout == "" && stdout.Len() > 0 || !strings.Contains(stdout.String(), tc.Stdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.Stdout)
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			switch {
			case tc.StderrLine == "" && stderr.Len() > 0:
				t.Errorf("stderr %q, want nothing", stderr.String())
			case !strings.HasPrefix(first, tc.StderrLine):
				t.Errorf("stderr's first line %q, want %q", first, tc.StderrLine)
			case tc.Code == cli.ExitUsage && !strings.Contains(rest, "Usage:\n  "+binary):
				t.Errorf("a usage error without the usage:\n%s", stderr.String())
			case tc.Code == cli.ExitFailure && rest != "":
				t.Errorf("a runtime failure on more than one line:\n%s", stderr.String())
			}
		})
	}
}
