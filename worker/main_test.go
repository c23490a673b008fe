package main

import (
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		run      bool
		code     int
		toStdout bool   // the usage goes to stdout, else to stderr
		first    string // the first line of the output
	}{
		{args: nil, run: true},
		{args: []string{"--help"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"-h"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"help"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"bogus"}, code: 2, first: `worker: unexpected argument "bogus"`},
		{args: []string{"--help", "bogus"}, code: 2, first: `worker: unexpected argument "bogus"`},
		{args: []string{"-v"}, code: 2, first: `worker: unexpected argument "-v"`},
		{args: []string{""}, code: 2, first: `worker: unexpected argument ""`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			run, stdout, stderr, code := commandLine(tc.args)
			if run != tc.run || code != tc.code {
				t.Fatalf("run=%v code=%d, want run=%v code=%d", run, code, tc.run, tc.code)
			}
			if tc.run {
				if stdout != "" || stderr != "" {
					t.Fatalf("running prints nothing first, got stdout %q stderr %q", stdout, stderr)
				}
				return
			}
			out, other := stderr, stdout
			if tc.toStdout {
				out, other = stdout, stderr
			}
			if other != "" {
				t.Fatalf("output on both streams: stdout %q stderr %q", stdout, stderr)
			}
			if first, _, _ := strings.Cut(out, "\n"); first != tc.first {
				t.Fatalf("first line %q, want %q", first, tc.first)
			}
			if !strings.Contains(out, "environment") || !strings.Contains(out, "README") {
				t.Fatalf("usage does not point at the environment and README:\n%s", out)
			}
		})
	}
}
