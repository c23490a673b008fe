package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestExecuteMapsErrorsByType: the exit code follows the error's type,
// wrapped or not, never its text.
func TestExecuteMapsErrorsByType(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		code     int
		stderr   string
		hasUsage bool
	}{
		{"nil", nil, ExitOK, "", false},
		{"usage error, wrapped", fmt.Errorf("while checking: %w", Usagef("bad input")), ExitUsage, "tool: while checking: bad input\n", true},
		{"runtime error that reads like a usage error", errors.New("unknown flag: --x\nsecond line"), ExitFailure, "tool: unknown flag: --x second line\n", false},
		{"already reported", fmt.Errorf("probe: %w", &ExitError{Code: 7}), 7, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := &cobra.Command{Use: "tool"}
			root.AddCommand(&cobra.Command{Use: "do", RunE: func(*cobra.Command, []string) error { return tc.err }})
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), root, []string{"do"}, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d", code, tc.code)
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n\n")
			if tc.hasUsage {
				if first+"\n" != tc.stderr || !strings.HasPrefix(rest, "Usage:\n  tool do") {
					t.Errorf("stderr %q, want %q and the usage of do", stderr.String(), tc.stderr)
				}
			} else if stderr.String() != tc.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

// TestExecuteTypesCobrasErrors: unknown commands and flags, and argument
// checks, are usage errors; a root without a command is one too.
func TestExecuteTypesCobrasErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nosuch"}, {"do", "--nosuch"}, {"do", "extra"}} {
		root := &cobra.Command{Use: "tool"}
		root.AddCommand(&cobra.Command{Use: "do", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }})
		var stderr bytes.Buffer
		if code := Execute(context.Background(), root, args, &bytes.Buffer{}, &stderr); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, code, ExitUsage, stderr.String())
		}
	}
}
